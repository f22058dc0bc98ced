import { afterEach, describe, expect, it, vi } from 'vitest'
import { processingLatency } from '../../shell/observability/prometheus.ts'
import { loadSettings } from '../../shell/settings.ts'
import { HASH_KEY } from '../logins.fixture.ts'
import { NOW, corpus } from '../core/login-corpus.fixture.ts'
import { LoginProcessor } from './login-processor.ts'
import { RulesThread } from './rules-thread.ts'
import type { BatchContext } from '../../shell/kafka/consumer-loop.ts'
import type { ConsumedRecord, OutputRecord } from '../../shell/kafka/records.ts'

const settings = (extra: Record<string, string> = {}) => loadSettings({ KPIPE_HASH_KEY: HASH_KEY, ALLOWED_APP_VERSIONS: '2.3.0,3.0.0-beta', ...extra })
const bytes = (data: string | Buffer | null | undefined) => (data === undefined || data === null ? data : Buffer.from(data))

/** An output as the producer writes it: strings as their UTF-8 bytes. */
const written = (o: OutputRecord) => ({
  topic: o.topic,
  key: bytes(o.key),
  value: bytes(o.value),
  headers: [...(o.headers as Map<string, Buffer>)].map(([name, value]) => [name, Buffer.from(value)]),
})

/** Records of three partitions, as the consumer hands them over. */
function batchOf(values: (Buffer | undefined)[]): ConsumedRecord[] {
  return values.map((value, i) => ({
    topic: 'user-login', partition: i % 3, offset: BigInt(1_000 + i), timestamp: BigInt(NOW - 50), key: undefined, headers: new Map(), value,
  })) as unknown as ConsumedRecord[]
}

afterEach(() => {
  vi.useRealTimers()
})

describe('the login processor with its rules on a thread of their own', () => {
  it('writes what it writes without the thread, byte for byte, and counts the same', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(NOW)
    const values: (Buffer | undefined)[] = corpus(2_345, 21)
    values.splice(600, 0, undefined)
    const batch = batchOf(values)
    const here = new LoginProcessor(settings(), 'p-1', NOW)
    const there = new LoginProcessor(settings(), 'p-1', NOW)
    const thread = new RulesThread(there.rules)
    try {
      const hereContext: BatchContext = { attempt: 0 }
      const thereContext: BatchContext = { attempt: 0 }
      const expected = here.handle(batch, hereContext)
      const actual = await there.threaded(thread)(batch, thereContext)
      expect(actual.map(written)).toEqual(expected.map(written))
      // every outcome is among them, so each path was compared
      expect(new Set(actual.map((o) => o.topic))).toEqual(new Set(['processed-output', 'cleaned-data', 'processed-errors']))

      const observed = async () => (await processingLatency.get()).values.find((v) => v.metricName.endsWith('_count'))!.value
      const before = await observed()
      here.committed(batch.length, hereContext)
      there.committed(batch.length, thereContext)
      // one latency per record committed, in the Prometheus histogram as in the interval metrics
      expect(await observed()).toBe(before + 2 * values.length)
      expect(there.total.toJSON()).toEqual(here.total.toJSON())
      expect(there.total.received).toBe(values.length)
      // the summary and the interval metrics (with the processed events' age) are the same records
      expect(String(there.takeSummary(NOW + 1_000).value)).toBe(String(here.takeSummary(NOW + 1_000).value))
      expect(String(there.takeMetrics([], NOW + 1_000).value)).toBe(String(here.takeMetrics([], NOW + 1_000).value))
    } finally {
      await thread.close()
    }
  })

  it('fails the batch, with the reason, when the thread is gone: nothing is written for it', async () => {
    const processor = new LoginProcessor(settings(), 'p-1')
    const thread = new RulesThread(processor.rules)
    await thread.close()
    // a batch of several runs: each fails, the batch with the first (none is left unhandled)
    await expect(processor.threaded(thread)(batchOf(corpus(1_234, 3)))).rejects.toThrow(/rules thread/)
  })

  it('is not used with METRICS_MODE=per-message, which times each record where its rules run', async () => {
    const processor = new LoginProcessor(settings({ METRICS_MODE: 'per-message' }), 'p-1')
    const thread = new RulesThread(processor.rules)
    try {
      expect(() => processor.threaded(thread)).toThrow(/per-message/)
    } finally {
      await thread.close()
    }
  })
})

describe("the login processor's periodic records", () => {
  it.each(['interval', 'per-message'] as const)('says they are due exactly when it gives some (METRICS_MODE=%s)', (mode) => {
    const processor = new LoginProcessor(settings({ METRICS_MODE: mode, SUMMARY_PUBLISH_INTERVAL: '10' }), 'p-1', NOW)
    const commit = (count: number) => {
      const context: BatchContext = { attempt: 0 }
      const batch = batchOf(corpus(count, 5))
      processor.handle(batch, context)
      processor.committed(batch.length, context)
    }
    // [what happens first, when, the topics it gives then]
    const steps: [() => void, number, string[]][] = [
      [() => {}, NOW + 500, []],
      // the interval metrics' second is over
      [() => {}, NOW + 1_000, mode === 'interval' ? ['metrics-output'] : []],
      // 12 committed: a summary is due by count
      [() => commit(12), NOW + 1_100, ['summary-output']],
      [() => {}, NOW + 1_200, []],
      // one more, then 10 s: a summary is due by time
      [() => commit(1), NOW + 11_200, mode === 'interval' ? ['metrics-output', 'summary-output'] : ['summary-output']],
      [() => {}, NOW + 11_300, []],
    ]
    for (const [first, now, topics] of steps) {
      first()
      const due = processor.periodicDue(now)
      const records = processor.periodic({ now, lag: [], final: false })
      expect(records.map((r) => r.topic), `at +${now - NOW} ms`).toEqual(topics)
      expect(due, `at +${now - NOW} ms`).toBe(topics.length > 0)
    }
  })
})
