import { UserError as KafkaUserError } from '@platformatic/kafka'
import type { Logger } from '../shell/log.ts'
import { backoffDelay, sleep } from '../shell/backoff.ts'
import type { KafkaConnection } from '../shell/kafka/connection.ts'
import { describe } from '../shell/kafka/consumer-loop.ts'
import { kafkaSetupError } from '../shell/kafka/connection-errors.ts'
import { ensureTopics } from '../shell/kafka/topics.ts'

/** Thrown when the signal stopped the wait: the caller exits cleanly. */
export class StoppedWaiting extends Error {
  override name = 'StoppedWaiting'
}

/**
 * Creates the topics that are missing (broker defaults for partitions and replication),
 * waiting with backoff while the brokers cannot be reached, so that a collector or sink
 * started before Kafka simply waits for it. Bad credentials or options fail at once.
 */
export async function ensureTopicsPatiently(connection: KafkaConnection, names: string[], log: Logger, signal?: AbortSignal): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw new StoppedWaiting('stopped while waiting for Kafka')
    try {
      await ensureTopics(connection, names.map((name) => ({ name, partitions: -1, replicationFactor: -1 })))
      return
    } catch (error) {
      const fatal = kafkaSetupError(error, connection)
      if (fatal) throw fatal
      if (error instanceof KafkaUserError) throw error
      if (signal?.aborted) throw new StoppedWaiting('stopped while waiting for Kafka')
      const delay = backoffDelay(attempt)
      log.warn({ attempt }, `Kafka at ${connection.bootstrapBrokers.join(',')} unavailable (${describe(error)}); retrying in ${(delay / 1000).toFixed(1)} s`)
      await sleep(delay, signal)
    }
  }
}
