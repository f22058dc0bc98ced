import { describe, expect, it } from 'vitest'
import { loadSettings } from './shell/settings.ts'
import { lineageHeaders } from './shell/kafka/records.ts'
import { LoginGenerator } from './logins/generate/login-generator.ts'
import { transformLogin } from './logins/core/transform-login.ts'
import { errorRecord } from './logins/core/error-record.ts'
import { LoginProcessor } from './logins/process/login-processor.ts'
import { HASH_KEY, LOGIN_RULES } from './logins/logins.fixture.ts'
import { HostSampler } from './host-metrics/sampler.ts'
import {
  filteredRecordSchema,
  hostSampleCsvSchema,
  hostSampleSchema,
  intervalMetricsSchema,
  loginErrorRecordSchema,
  loginEventSchema,
  perMessageMetricsSchema,
  processedEventSchema,
  readLineage,
  summaryRecordSchema,
} from './record-formats.ts'

const now = Date.parse('2026-11-24T10:00:00Z')
const settings = (extra: Record<string, string> = {}) => loadSettings({ KPIPE_HASH_KEY: HASH_KEY, ...extra })
const json = (value: unknown) => JSON.parse(String(value)) as unknown

/** What each writer produces is what the readers' schema accepts: one format per topic, checked. */
describe('every writer writes its topic\'s schema', () => {
  it('user-login: the generator\'s valid events', () => {
    const generator = new LoginGenerator(7)
    for (let i = 0; i < 50; i++) expect(loginEventSchema.safeParse(json(generator.next(now / 1000).value)).success).toBe(true)
  })

  it('processed-output, cleaned-data and processed-errors: the rules\' outcomes', () => {
    const generator = new LoginGenerator(11, 0.5)
    const seen = new Set<string>()
    for (let i = 0; i < 300; i++) {
      const raw = Buffer.from(generator.next(now / 1000).value)
      const outcome = transformLogin(raw, now, LOGIN_RULES)
      seen.add(outcome.kind)
      if (outcome.kind === 'processed') expect(processedEventSchema.parse(json(outcome.value))).toBeDefined()
      else if (outcome.kind === 'filtered') expect(filteredRecordSchema.parse(json(outcome.value)).reason).toBe(outcome.reason)
      else {
        const record = loginErrorRecordSchema.parse(json(errorRecord(outcome, raw, { topic: 'user-login', partition: 2, offset: 41n }, new Date(now).toISOString())))
        expect(record).toMatchObject({ error_type: outcome.errorType, source: { topic: 'user-login', partition: 2, offset: '41' }, raw_encoding: expect.any(String) })
      }
    }
    expect([...seen].sort()).toEqual(['failed', 'filtered', 'processed'])
  })

  it('summary-output and metrics-output: the processor\'s summary, interval and per-message records', () => {
    const processor = new LoginProcessor(settings(), 'p-1', now)
    const batch = [0, 1, 2].map((offset) => ({
      topic: 'user-login', partition: 0, offset: BigInt(offset), timestamp: BigInt(now), key: undefined, headers: new Map(),
      value: Buffer.from(new LoginGenerator(offset).next(Date.now() / 1000).value),
    })) as unknown as Parameters<LoginProcessor['handle']>[0]
    const context = {} as { attempt: number; carry?: unknown }
    processor.handle(batch, context)
    processor.committed(batch.length, context)
    const summary = summaryRecordSchema.parse(json(processor.takeSummary().value))
    expect(summary.total.received).toBe(3)
    const metrics = intervalMetricsSchema.parse(json(processor.takeMetrics([{ topic: 'user-login', partition: 0, lag: 4 }]).value))
    expect(metrics).toMatchObject({ instance_id: 'p-1', messages_in: 3, consumer_lag: [{ topic: 'user-login', partition: 0, lag: 4 }] })
    const perMessage = new LoginProcessor(settings({ METRICS_MODE: 'per-message' }), 'p-2', now).handle(batch).filter((o) => o.topic === 'metrics-output')
    expect(perMessage).toHaveLength(3)
    for (const record of perMessage) expect(perMessageMetricsSchema.parse(json(record.value)).message_id).toMatch(/^user-login\/0\/\d$/)
  })

  it('performance: the collector\'s sample, and the original pipeline\'s line', () => {
    const sampler = new HostSampler('web-1')
    sampler.prime()
    const sample = hostSampleSchema.parse(json(JSON.stringify(sampler.sample(new Date()))))
    expect(sample.host).toBe('web-1')
    const line = hostSampleCsvSchema.parse('2024-11-20 10:00:00.123456, 12.5, 45.2, 123,0,7340032000,1048576000,123456,654321, 57.3')
    expect(line).toMatchObject({ time: '2024-11-20 10:00:00.123456', cpu_usage: 12.5, cpu_calls: 0, disk_usage: 57.3 })
    expect(hostSampleCsvSchema.safeParse('2024-11-20 10:00:00, 12.5').success).toBe(false)
    expect(hostSampleSchema.safeParse({ host: 'h', time: 't', cpu_usage: 101 }).success).toBe(false)
  })

  it('lineage headers: written by every derived record, read back', () => {
    const headers = new Map(lineageHeaders({ topic: 'user-login', partition: 3, offset: 12345678901n }))
    expect(readLineage(headers)).toEqual({ topic: 'user-login', partition: 3, offset: 12345678901n })
    headers.set('source-offset', Buffer.from('x'))
    expect(readLineage(headers)).toBeUndefined()
  })

  it('lineage headers: a partition and an offset are decimal digits in Kafka\'s ranges, the topic is named, or the lineage is broken', () => {
    const read = (topic: string, partition: string, offset: string) =>
      readLineage(new Map([['source-topic', topic], ['source-partition', partition], ['source-offset', offset]].map(([k, v]) => [k!, Buffer.from(v!)])))
    expect(read('user-login', '2147483647', '9223372036854775807')).toEqual({ topic: 'user-login', partition: 2_147_483_647, offset: 2n ** 63n - 1n })
    expect(read('user-login', '0', '0')).toEqual({ topic: 'user-login', partition: 0, offset: 0n })
    // what Number() or a coercion would have read as a partition: 0, 3, 16, 1000, 3
    for (const partition of ['', ' 3', '3.0', '0x10', '1e3', '+3', '-1', '2147483648', '99999999999999999999']) {
      expect(read('user-login', partition, '41'), `partition ${JSON.stringify(partition)}`).toBeUndefined()
    }
    for (const offset of ['', ' 41', '41.0', '0x29', '-1', '9223372036854775808', '1'.repeat(20)]) {
      expect(read('user-login', '2', offset), `offset ${JSON.stringify(offset)}`).toBeUndefined()
    }
    expect(read('', '2', '41')).toBeUndefined()
  })
})
