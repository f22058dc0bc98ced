import type { Settings } from '../../shell/settings.ts'
import type { Logger } from '../../shell/log.ts'
import { sleep } from '../../shell/backoff.ts'
import { kafkaConnection } from '../../shell/kafka/connection.ts'
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

/**
 * `kpipe logins generate`: produces synthetic login events to TOPIC_LOGINS on a schedule that
 * does not drift (the n-th message is due at n / rate seconds), in batches. One send at a time:
 * concurrent sends of one idempotent producer fail with OUT_OF_ORDER_SEQUENCE_NUMBER in this client.
 */
export async function runGenerator(options: GenerateOptions): Promise<GenerateResult> {
  const { settings, rate, count, signal } = options
  const generator = new LoginGenerator(options.seed, options.invalidRatio)
  const producer = createProducer(kafkaConnection(settings, 'generator'))
  const byKind: Record<GeneratedKind, number> = { valid: 0, malformed_json: 0, missing_field: 0, wrong_type: 0, stale: 0, not_utf8: 0 }
  let queued = 0
  let sent = 0
  const started = Date.now()
  try {
    while (!signal.aborted && (count === undefined || queued < count)) {
      const elapsed = Date.now() - started
      const due = rate > 0 ? Math.floor((rate * elapsed) / 1000) + 1 : Number.MAX_SAFE_INTEGER
      let n = Math.min(due - queued, MAX_SEND, count === undefined ? MAX_SEND : count - queued)
      if (n <= 0) {
        await sleep(Math.max(1, Math.ceil(((queued + 1) * 1000) / rate - elapsed)), signal)
        continue
      }
      const nowSeconds = Math.floor(Date.now() / 1000)
      const messages: OutputRecord[] = []
      for (; n > 0; n--) {
        const event = generator.next(nowSeconds)
        byKind[event.kind]++
        messages.push(event.key === undefined ? { topic: settings.TOPIC_LOGINS, value: event.value } : { topic: settings.TOPIC_LOGINS, key: event.key, value: event.value })
      }
      queued += messages.length
      await producer.send({ messages })
      sent += messages.length
      options.onProgress?.(sent, Date.now() - started)
    }
  } finally {
    await producer.close().catch(() => {})
  }
  return { sent, byKind, elapsedMs: Date.now() - started }
}
