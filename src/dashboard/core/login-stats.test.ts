import { describe, expect, it } from 'vitest'
import { LoginStats, parseLoginError, parseMetrics, parseSummary } from './login-stats.ts'
import { counts } from '../dashboard.fixture.ts'


const summary = (instance: string, time: string, n: number) =>
  JSON.stringify({ instance_id: instance, time, window_start: '2026-11-24T10:00:00Z', window_end: time, total: counts(n), window: counts(1) })

const interval = (instance: string, time: string, throughput: number, p99: number, lag: { topic: string; partition: number; lag: number }[] = []) =>
  JSON.stringify({
    mode: 'interval', instance_id: instance, time, interval_ms: 1000, messages_in: throughput, throughput_per_s: throughput,
    outputs: { processed: throughput - 2, filtered: 1, errors: 1 },
    latency_ms: { p50: p99 / 4, p95: p99 / 2, p99, max: p99 * 2 }, event_age_ms: { p50: 1, p95: 2, p99: 3, max: 4 }, consumer_lag: lag,
  })

describe('parsing', () => {
  it('reads a summary and fills what a publisher left out', () => {
    const s = parseSummary(JSON.stringify({ instance_id: 'p-1', time: '2026-11-24T10:00:05Z', total: { received: 3, processed: 2 } }))
    expect(s?.total.received).toBe(3)
    expect(s?.total.errors.invalid_json).toBe(0)
    expect(s?.window.received).toBe(0)
  })

  it.each(['{bad', '[]', '{"time":"2026-11-24T10:00:00Z","total":{}}', '{"instance_id":"x","time":"never","total":{}}', '{"instance_id":"x","time":"2026-11-24T10:00:00Z"}'])(
    'rejects summary %s',
    (text) => expect(parseSummary(text)).toBeUndefined(),
  )

  it('tells interval metrics, per-message records and garbage apart', () => {
    expect(parseMetrics(interval('p-1', '2026-11-24T10:00:01Z', 100, 8)).kind).toBe('interval')
    expect(parseMetrics(JSON.stringify({ mode: 'per-message', message_id: 'a', processing_time: 1.2, topic: 'user-login', timestamp: 1 })).kind).toBe('per-message')
    expect(parseMetrics('not json').kind).toBe('invalid')
    expect(parseMetrics(JSON.stringify({ mode: 'interval' })).kind).toBe('invalid')
    expect(parseMetrics(undefined).kind).toBe('invalid')
  })

  it('keeps only well-formed lag entries', () => {
    const m = parseMetrics(JSON.stringify({ mode: 'interval', instance_id: 'p', time: 1, consumer_lag: [{ topic: 't', partition: 0, lag: 5 }, { topic: 't' }, 7, null] }))
    expect(m.kind === 'interval' && m.metrics.consumer_lag).toEqual([{ topic: 't', partition: 0, lag: 5 }])
  })

  it('reads an error record without its raw payload', () => {
    const e = parseLoginError(JSON.stringify({
      error_type: 'missing_fields', error: 'missing: ip', fields: ['ip'], user_id: 'u-1',
      source: { topic: 'user-login', partition: 2, offset: '41' }, raw: '{"ip":"1.2.3.4"}', raw_encoding: 'utf8', time: '2026-11-24T10:00:00Z',
    }))
    expect(e).toEqual({ time: Date.parse('2026-11-24T10:00:00Z'), error_type: 'missing_fields', error: 'missing: ip', fields: ['ip'], user_id: 'u-1', source: { topic: 'user-login', partition: 2, offset: '41' } })
    expect(JSON.stringify(e)).not.toContain('1.2.3.4')
  })

  it('rejects an error record without error_type', () => {
    expect(parseLoginError('{"error":"x"}')).toBeUndefined()
  })
})

describe('LoginStats', () => {
  it('sums the latest summary of every instance', () => {
    const stats = new LoginStats()
    stats.addSummary(parseSummary(summary('p-1', '2026-11-24T10:00:05Z', 1))!)
    stats.addSummary(parseSummary(summary('p-1', '2026-11-24T10:00:10Z', 2))!)
    stats.addSummary(parseSummary(summary('p-2', '2026-11-24T10:00:07Z', 3))!)
    // an older summary of p-1 arriving late does not replace the newer one
    stats.addSummary(parseSummary(summary('p-1', '2026-11-24T10:00:01Z', 100))!)
    const view = stats.summary()
    expect(view.instances.map((i) => i.instance_id)).toEqual(['p-1', 'p-2'])
    expect(view.total.received).toBe(50)
    expect(view.total.processed).toBe(35)
    expect(view.total.filtered).toEqual({ stale: 5, app_version: 5 })
    expect(view.total.device_types).toEqual({ android: 20, ios: 15 })
    expect(view.window.received).toBe(20)
    expect(view.updated_at).toBe('2026-11-24T10:00:10.000Z')
  })

  it('leaves a stopped instance out of the live totals: its final summary, or its metrics gone silent', () => {
    const stats = new LoginStats()
    const at = (s: string) => Date.parse(`2026-11-24T10:00:${s}Z`)
    // the run before a restart published its final summary as it stopped
    stats.addSummary(parseSummary(JSON.stringify({ ...JSON.parse(summary('vm-100', '2026-11-24T10:00:05Z', 4)) as object, final: true }))!)
    // a killed run publishes nothing more: its interval metrics grow old
    stats.addSummary(parseSummary(summary('vm-150', '2026-11-24T10:00:06Z', 2))!)
    stats.addMetrics(parseMetrics(interval('vm-150', '2026-11-24T10:00:06Z', 10, 5)))
    // the running one
    stats.addSummary(parseSummary(summary('vm-200', '2026-11-24T10:00:30Z', 1))!)
    stats.addMetrics(parseMetrics(interval('vm-200', '2026-11-24T10:00:30Z', 10, 5)))
    const view = stats.summary(at('31'))
    expect(view.instances.map((i) => i.instance_id)).toEqual(['vm-200'])
    expect(view.stopped.map((i) => i.instance_id)).toEqual(['vm-100', 'vm-150'])
    expect(view.total.received).toBe(10)
    expect(view.updated_at).toBe('2026-11-24T10:00:30.000Z')
    // within staleAfterMs the killed run still counts: it may only be slow
    expect(stats.summary(at('20')).instances.map((i) => i.instance_id)).toEqual(['vm-150', 'vm-200'])
  })

  it('is empty before anything arrived', () => {
    const view = new LoginStats().summary()
    expect(view.instances).toEqual([])
    expect(view.updated_at).toBeNull()
    expect(view.total.received).toBe(0)
    expect(new LoginStats().processing().throughput_per_s).toBeNull()
  })

  it('combines interval metrics: throughput summed, latency the worst, lag per partition once', () => {
    const stats = new LoginStats()
    const now = Date.parse('2026-11-24T10:00:02Z')
    stats.addMetrics(parseMetrics(interval('p-1', '2026-11-24T10:00:01.100Z', 100, 8, [{ topic: 'user-login', partition: 0, lag: 9 }])))
    stats.addMetrics(parseMetrics(interval('p-2', '2026-11-24T10:00:01.300Z', 50, 20, [{ topic: 'user-login', partition: 1, lag: 3 }, { topic: 'user-login', partition: 0, lag: 2 }])))
    stats.addMetrics(parseMetrics(JSON.stringify({ mode: 'per-message', message_id: 'x' })))
    stats.addMetrics(parseMetrics('garbage'))
    const view = stats.processing(now)
    expect(view.throughput_per_s).toBe(150)
    expect(view.latency_ms.p99).toBe(20)
    expect(view.outputs).toEqual({ processed: 146, filtered: 2, errors: 2 })
    expect(view.consumer_lag).toEqual([{ topic: 'user-login', partition: 0, lag: 2 }, { topic: 'user-login', partition: 1, lag: 3 }])
    expect(view.history).toEqual({ time: [Date.parse('2026-11-24T10:00:01Z')], throughput_per_s: [150], latency_p99_ms: [20] })
    expect(view.per_message_records).toBe(1)
  })

  it('stops counting an instance that went quiet towards the current throughput', () => {
    const stats = new LoginStats()
    stats.addMetrics(parseMetrics(interval('p-1', '2026-11-24T10:00:00Z', 100, 8)))
    expect(stats.processing(Date.parse('2026-11-24T10:00:05Z')).throughput_per_s).toBe(100)
    expect(stats.processing(Date.parse('2026-11-24T10:01:00Z')).throughput_per_s).toBeNull()
  })

  it('keeps only the history window', () => {
    const stats = new LoginStats(10_000)
    for (let s = 0; s < 30; s++) stats.addMetrics(parseMetrics(interval('p-1', new Date(Date.parse('2026-11-24T10:00:00Z') + s * 1000).toISOString(), s, 1)))
    const { history } = stats.processing()
    expect(history.time).toHaveLength(11)
    expect(history.throughput_per_s.at(-1)).toBe(29)
  })

  it('lists the latest errors first, at most maxErrors', () => {
    const stats = new LoginStats(60_000, 3)
    for (let i = 0; i < 5; i++) stats.addError(parseLoginError(JSON.stringify({ error_type: 'invalid_json', error: `e${i}` }))!)
    expect(stats.errors().map((e) => e.error)).toEqual(['e4', 'e3', 'e2'])
  })
})
