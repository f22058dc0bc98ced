import type { Logger } from '../shell/log.ts'
import type { KafkaConnection } from '../shell/kafka/connection.ts'
import { isRetriableKafkaError, kafkaSetupError } from '../shell/kafka/connection-errors.ts'
import { ensureTopics } from '../shell/kafka/topics.ts'
import { retryWithBackoff } from '../shell/retry.ts'

/**
 * Creates the topics that are missing (broker defaults for partitions and replication),
 * waiting with backoff while the brokers cannot be reached, so that a collector or sink
 * started before Kafka simply waits for it. Bad credentials or options fail at once; the
 * signal ends the wait with StoppedWaiting.
 */
export async function ensureTopicsPatiently(connection: KafkaConnection, names: string[], log: Logger, signal?: AbortSignal): Promise<void> {
  await retryWithBackoff(() => ensureTopics(connection, names.map((name) => ({ name, partitions: -1, replicationFactor: -1 }))), {
    what: `Kafka at ${connection.bootstrapBrokers.join(',')} unavailable`,
    log,
    ...(signal ? { signal } : {}),
    retriable: (error) => isRetriableKafkaError(error, connection),
    fatal: (error) => kafkaSetupError(error, connection) ?? error,
  })
}
