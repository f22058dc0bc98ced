import { describe, expect, inject, it } from 'vitest'
import { runKpipe } from '../../test/support/cli.ts'

/** Every figure `kpipe bench --json` reports; each is a measurement and must be a positive number. */
const FIGURES = [
  'ceiling.record_bytes', 'ceiling.producer_msgs_per_s', 'ceiling.consumer_msgs_per_s',
  ...['at_least_once', 'exactly_once'].flatMap((mode) =>
    ['msgs_per_s', 'ratio_to_ceiling', 'cpu_us_per_msg', 'wall_s', 'startup_s', 'peak_rss_mb'].map((f) => `processor.${mode}.${f}`)),
  ...['at_1000_msgs_per_s', 'at_10000_msgs_per_s'].flatMap((rate) => ['p50_ms', 'p99_ms', 'max_ms', 'messages'].map((f) => `latency.${rate}.${f}`)),
  'sink.postgres.rows_per_s', 'sink.postgres.peak_rss_mb', 'sink.pglite.rows_per_s', 'sink.pglite.peak_rss_mb',
  'logins_sink.events_per_s', 'logins_sink.cpu_us_per_event', 'logins_sink.rows', 'logins_sink.peak_rss_mb',
  'collector.cpu_ms_per_sample', 'collector.peak_rss_mb',
]
const TARGETS = ['processor.at_least_once.msgs_per_s', 'processor.exactly_once.msgs_per_s', 'latency.at_1000_msgs_per_s.p99_ms', 'sink.postgres.rows_per_s', 'logins_sink.events_per_s', 'processor.peak_rss_mb']

const at = (object: unknown, path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], object)

describe('kpipe bench', () => {
  // A smoke test of the whole bench on the test broker and PostgreSQL: speed is judged in
  // docs/benchmarks.md, never here; here every part must run and report a real measurement.
  it('--quick --json measures every part and names every figure', () => {
    const run = runKpipe(['bench', '--quick', '--json'], { KAFKA_BROKERS: inject('kafkaBrokers'), DATABASE_URL: inject('postgresUrl') }, 240_000)
    expect(run.code, run.stderr).toBe(0)
    const result = JSON.parse(run.stdout) as Record<string, unknown>
    for (const key of FIGURES) {
      const value = at(result, key)
      expect(typeof value, key).toBe('number')
      expect(value as number, key).toBeGreaterThan(0)
    }
    for (const rate of ['at_1000_msgs_per_s', 'at_10000_msgs_per_s']) {
      const l = at(result, `latency.${rate}`) as { p50_ms: number; p99_ms: number; max_ms: number }
      expect(l.p50_ms).toBeLessThanOrEqual(l.p99_ms)
      expect(l.p99_ms).toBeLessThanOrEqual(l.max_ms)
    }
    for (const key of TARGETS) {
      const target = (result.targets as Record<string, { met: unknown; value: unknown }>)[key]
      expect(typeof target?.met, key).toBe('boolean')
      expect(target?.value, key).toBe(key === 'processor.peak_rss_mb'
        ? Math.max(at(result, 'processor.at_least_once.peak_rss_mb') as number, at(result, 'processor.exactly_once.peak_rss_mb') as number)
        : at(result, key))
    }
    expect(at(result, 'settings.quick')).toBe(true)
    expect(at(result, 'machine.cpus')).toBeGreaterThan(0)
    // the table's progress lines went to stderr, the JSON alone to stdout
    expect(run.stderr).toContain('bench: done')
  }, 300_000)
})
