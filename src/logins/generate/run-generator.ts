import type { Settings } from '../../shell/settings.ts'
import type { Logger } from '../../shell/log.ts'
import type { ProduceResult } from '@platformatic/kafka'
import { backoffDelay, sleep } from '../../shell/backoff.ts'
import { retryMessage } from '../../shell/retry.ts'
import { kafkaConnection, retryDelay } from '../../shell/kafka/connection.ts'
import { isFatalKafkaError } from '../../shell/kafka/connection-errors.ts'
import { keyPartition } from '../../shell/kafka/partitioner.ts'
import { createProducer } from '../../shell/kafka/producer.ts'
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
/** the client's own tries before the first acknowledged write (a wrong address fails in ~0.75 s) */
const TRIES_BEFORE_FIRST_WRITE = 3
/** the longest wait between two tries while Kafka is away */
const MAX_RETRY_DELAY_MS = 5000

/**
 * `kpipe logins generate`: produces synthetic login events to TOPIC_LOGINS on a schedule that
 * does not drift (the n-th message is due at n / rate seconds), in batches. One send at a time:
 * concurrent sends of one idempotent producer fail with OUT_OF_ORDER_SEQUENCE_NUMBER in this client.
 *
 * A broker outage after the first acknowledged batch is ridden through without losing or
 * repeating an event: the client itself repeats the failed produce request (with backoff, until it
 * is answered or the generator is stopped), and each repeat carries the producer id and sequence
 * numbers of the first try, so the broker drops a batch it wrote before the failure (its answer
 * lost). A resend by the generator would not: a send that fails makes the client forget its
 * producer id, and the same records sent again are a new write (a duplicate, when the first had
 * been written). Nothing written yet means a wrong address or topic: that fails after the client's
 * usual three tries.
 */
export async function runGenerator(options: GenerateOptions): Promise<GenerateResult> {
  const { settings, rate, count, signal } = options
  const generator = new LoginGenerator(options.seed, options.invalidRatio)
  const connection = kafkaConnection(settings, 'generator')
  const byKind: Record<GeneratedKind, number> = { valid: 0, malformed_json: 0, missing_field: 0, wrong_type: 0, stale: 0, not_utf8: 0 }
  let queued = 0
  let sent = 0
  let keyless = 0
  let inFlight = 0
  let retrying = false
  /** the repeating was ended for a setup error, or after the usual tries before the first write (not by a stop) */
  let gaveUp = false
  let closing: Promise<void> | undefined
  // ends the client's repeating: the pending request then fails with "Client closed while retrying"
  const stopRetrying = (failed: boolean) => {
    gaveUp ||= failed
    // after the client has registered its close listener for the wait it is starting
    setImmediate(() => (closing ??= producer.close().catch(() => {})))
  }
  const producer = createProducer(connection, {
    retryUntilClosed: (attempt, error) => {
      retrying = true
      // closed while a request was out: the next try meets the closed client and ends the send
      if (closing !== undefined) return 0
      if (isFatalKafkaError(error, connection) || (sent === 0 && attempt > TRIES_BEFORE_FIRST_WRITE)) stopRetrying(true)
      else if (signal.aborted) stopRetrying(false)
      // before the first write: the client's usual quiet tries (a coordinator still loading, …)
      else if (sent === 0) return retryDelay(producer, 'produce', attempt, TRIES_BEFORE_FIRST_WRITE, error)
      else {
        const delay = backoffDelay(attempt, MAX_RETRY_DELAY_MS)
        options.log.warn({ err: error, attempt }, retryMessage(`Kafka unavailable, sending the same ${inFlight} events again`, error, delay))
        return delay
      }
      return MAX_RETRY_DELAY_MS
    },
  })
  const onAbort = () => {
    if (retrying) stopRetrying(false)
  }
  signal.addEventListener('abort', onAbort, { once: true })
  const started = Date.now()
  try {
    const partitions = (await producer.metadata({ topics: [settings.TOPIC_LOGINS], retries: TRIES_BEFORE_FIRST_WRITE })).topics.get(settings.TOPIC_LOGINS)!.partitionsCount
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
      inFlight = messages.length
      try {
        await producer.send({ messages })
      } catch (error) {
        // the client's error holds every try's error: the CLI explains a setup error from it
        if (gaveUp || !signal.aborted) throw error
        // stopped while Kafka was away: the partitions acknowledged before that are in
        const acknowledged = new Set(((error as { produced?: ProduceResult }).produced?.offsets ?? []).map((o) => o.partition))
        sent += messages.filter((m) => acknowledged.has(m.partition)).length
        break
      }
      retrying = false
      sent += messages.length
      options.onProgress?.(sent, Date.now() - started)
    }
  } finally {
    signal.removeEventListener('abort', onAbort)
    await (closing ?? producer.close().catch(() => {}))
  }
  return { sent, byKind, elapsedMs: Date.now() - started }
}
