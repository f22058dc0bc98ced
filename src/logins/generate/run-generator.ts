import type { Settings } from '../../shell/settings.ts'
import type { Logger } from '../../shell/log.ts'
import type { ProduceResult } from '@platformatic/kafka'
import { sleep } from '../../shell/backoff.ts'
import { retryWithBackoff, StoppedWaiting } from '../../shell/retry.ts'
import { kafkaConnection, type KafkaConnection } from '../../shell/kafka/connection.ts'
import { isFatalKafkaError } from '../../shell/kafka/connection-errors.ts'
import { keyPartition } from '../../shell/kafka/partitioner.ts'
import { createProducer, type KpipeProducer } from '../../shell/kafka/producer.ts'
import type { OutputRecord } from '../../shell/kafka/records.ts'
import { LoginGenerator, type GeneratedKind } from './login-generator.ts'

export interface GenerateOptions {
  settings: Settings
  log: Logger
  /** messages per second, steady; 0 means as fast as the broker takes them */
  rate: number
  /** stop after this many; undefined runs until the signal */
  count?: number
  invalidRatio: number
  seed: number
  signal: AbortSignal
  onProgress?: (sent: number, elapsedMs: number) => void
}

export interface GenerateResult {
  sent: number
  byKind: Record<GeneratedKind, number>
  elapsedMs: number
}

const MAX_SEND = 2000

/**
 * `kpipe logins generate`: produces synthetic login events to TOPIC_LOGINS on a schedule that
 * does not drift (the n-th message is due at n / rate seconds), in batches. One send at a time:
 * concurrent sends of one idempotent producer fail with OUT_OF_ORDER_SEQUENCE_NUMBER in this client.
 *
 * A broker outage after the first acknowledged batch is ridden through, without losing or
 * repeating an event: the failed batch is sent again by the same idempotent producer, to the same
 * partitions in the same order. The client advances a partition's sequence number only when the
 * partition's write is acknowledged, so the broker recognises a batch it already wrote (its ack
 * was lost) by its sequence numbers and does not write it twice; partitions acknowledged before
 * the failure are left out of the resend. That needs every event's partition fixed before the
 * first attempt: keyed events go where the client's default partitioner puts them, keyless ones
 * round-robin. Nothing written yet means a wrong address or topic: that fails at once.
 */
export async function runGenerator(options: GenerateOptions): Promise<GenerateResult> {
  const { settings, rate, count, signal } = options
  const generator = new LoginGenerator(options.seed, options.invalidRatio)
  const connection = kafkaConnection(settings, 'generator')
  const producer = createProducer(connection)
  const byKind: Record<GeneratedKind, number> = { valid: 0, malformed_json: 0, missing_field: 0, wrong_type: 0, stale: 0, not_utf8: 0 }
  let queued = 0
  let sent = 0
  let keyless = 0
  const started = Date.now()
  try {
    const partitions = (await producer.metadata({ topics: [settings.TOPIC_LOGINS] })).topics.get(settings.TOPIC_LOGINS)!.partitionsCount
    while (!signal.aborted && (count === undefined || queued < count)) {
      const elapsed = Date.now() - started
      const due = rate > 0 ? Math.floor((rate * elapsed) / 1000) + 1 : Number.MAX_SAFE_INTEGER
      let n = Math.min(due - queued, MAX_SEND, count === undefined ? MAX_SEND : count - queued)
      if (n <= 0) {
        await sleep(Math.max(1, Math.ceil(((queued + 1) * 1000) / rate - elapsed)), signal)
        continue
      }
      const nowSeconds = Math.floor(Date.now() / 1000)
      const messages: (OutputRecord & { partition: number })[] = []
      for (; n > 0; n--) {
        const event = generator.next(nowSeconds)
        byKind[event.kind]++
        const partition = (event.key === undefined ? keyless++ : keyPartition(Buffer.from(event.key))) % partitions
        messages.push(event.key === undefined ? { topic: settings.TOPIC_LOGINS, partition, value: event.value } : { topic: settings.TOPIC_LOGINS, partition, key: event.key, value: event.value })
      }
      queued += messages.length
      const written = await sendThroughOutages(producer, connection, messages, sent === 0, options)
      sent += written
      if (written < messages.length) break
      options.onProgress?.(sent, Date.now() - started)
    }
  } finally {
    await producer.close().catch(() => {})
  }
  return { sent, byKind, elapsedMs: Date.now() - started }
}

/**
 * Sends the batch until every partition of it is acknowledged; returns how many events were
 * written (fewer only when stopped meanwhile). Fails at once on a refused login or certificate,
 * and on any failure before the first acknowledged write (`failFast`).
 */
async function sendThroughOutages(producer: KpipeProducer, connection: KafkaConnection, messages: (OutputRecord & { partition: number })[], failFast: boolean, options: GenerateOptions): Promise<number> {
  let pending = messages
  try {
    await retryWithBackoff(
      async () => {
        try {
          await producer.send({ messages: pending })
        } catch (error) {
          // partitions written before the failure: their events are in, and their sequence numbers moved on
          const acknowledged = new Set(((error as { produced?: ProduceResult }).produced?.offsets ?? []).map((o) => o.partition))
          if (acknowledged.size > 0) pending = pending.filter((m) => !acknowledged.has(m.partition))
          throw error
        }
      },
      {
        what: () => `Kafka unavailable, sending the same ${pending.length} events again`,
        log: options.log,
        signal: options.signal,
        retriable: (error) => !failFast && !isFatalKafkaError(error, connection),
      },
    )
    return messages.length
  } catch (error) {
    if (error instanceof StoppedWaiting) return messages.length - pending.length
    throw error
  }
}
