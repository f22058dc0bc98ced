import { describe, expect, it } from 'vitest'
import { chartPoint, chartSeries, counterRate, deriveRates, downsample, gapLimitMs, markGaps, parseSample, toColumns, toSample, typicalStepMs, type ChartPoint, type Sample } from './samples.ts'

const T0 = Date.parse('2026-11-24T10:00:00.000Z')

function sample(offsetMs: number, over: Partial<Sample> = {}): Sample {
  return {
    host: 'web-1',
    time: T0 + offsetMs,
    cpu_usage: 10,
    memory_usage: 40,
    disk_usage: 50,
    cpu_interrupts: 1000 + offsetMs,
    bytes_sent: 10_000 + offsetMs * 2,
    bytes_received: 20_000 + offsetMs * 4,
    memory_used: 1,
    memory_free: 2,
    ...over,
  }
}

describe('parseSample', () => {
  it('reads the performance topic value, with null for cpu_calls-like missing fields', () => {
    const s = parseSample(Buffer.from(JSON.stringify({
      host: 'web-1', time: '2026-11-24T10:00:00.500Z', cpu_usage: 12.5, memory_usage: 43.1, cpu_interrupts: 123456789, cpu_calls: null,
      memory_used: 7340032000, memory_free: 1048576000, bytes_sent: 123456, bytes_received: 654321, disk_usage: 57.3,
    })))
    expect(s).toEqual({
      host: 'web-1', time: T0 + 500, cpu_usage: 12.5, memory_usage: 43.1, disk_usage: 57.3, cpu_interrupts: 123456789,
      bytes_sent: 123456, bytes_received: 654321, memory_used: 7340032000, memory_free: 1048576000,
    })
  })

  it('accepts numeric strings (PostgreSQL numeric) and Date times (database rows)', () => {
    const s = toSample({ host: 'h', time: new Date(T0), cpu_usage: '12.50', bytes_sent: '99' })
    expect(s?.cpu_usage).toBe(12.5)
    expect(s?.bytes_sent).toBe(99)
    expect(s?.time).toBe(T0)
    expect(s?.memory_usage).toBeNull()
  })

  it.each([
    ['not JSON', '{nope'],
    ['an array', '[1,2]'],
    ['an empty host', JSON.stringify({ host: '', time: '2026-11-24T10:00:00Z' })],
    ['a bad time', JSON.stringify({ host: 'h', time: 'yesterday' })],
    ['null', 'null'],
    ['a comma-separated line with too few columns', '2024-11-20 10:00:00.123456, 12.5, 45.2'],
    ['a comma-separated line with a bad time', '20-11-2024 10:00, 12.5, 45.2, 123,0,7340032000,1048576000,123456,654321, 57.3'],
  ])('rejects %s', (_what, text) => {
    expect(parseSample(Buffer.from(text))).toBeUndefined()
  })

  it('reads the original pipeline\'s comma-separated line: naive local time, host from the key', () => {
    const line = '2024-11-20 10:00:00.123456, 12.5, 45.2, 123,0,7340032000,1048576000,123456,654321, 57.3'
    expect(parseSample(Buffer.from(line), Buffer.from('db-1'))).toEqual({
      host: 'db-1', time: new Date(2024, 10, 20, 10, 0, 0, 123).getTime(), cpu_usage: 12.5, memory_usage: 45.2, disk_usage: 57.3,
      cpu_interrupts: 123, bytes_sent: 123456, bytes_received: 654321, memory_used: 7340032000, memory_free: 1048576000,
    })
    expect(parseSample(line)?.host).toBe('unknown')
  })

  it('a JSON sample without host is the record key\'s host, else unknown: as the sink stores it', () => {
    const text = JSON.stringify({ time: '2026-11-24T10:00:00Z', cpu_usage: 1 })
    expect(parseSample(Buffer.from(text), Buffer.from('db-2'))).toMatchObject({ host: 'db-2', time: T0, cpu_usage: 1 })
    expect(parseSample(Buffer.from(text))?.host).toBe('unknown')
  })

  it('refuses what the sink refuses: a metric out of its range or of the wrong type', () => {
    expect(parseSample(Buffer.from(JSON.stringify({ host: 'h', time: '2026-11-24T10:00:00Z', cpu_usage: 140 })))).toBeUndefined()
    expect(parseSample(Buffer.from(JSON.stringify({ host: 'h', time: '2026-11-24T10:00:00Z', bytes_sent: '12' })))).toBeUndefined()
  })

  it('rejects a record without a value', () => {
    expect(parseSample(undefined)).toBeUndefined()
  })

  it('turns non-finite and non-numeric metrics into null', () => {
    expect(toSample({ host: 'h', time: new Date(T0), cpu_usage: 'abc', memory_usage: true, disk_usage: {} })).toMatchObject({ cpu_usage: null, memory_usage: null, disk_usage: null })
  })
})

describe('counterRate', () => {
  it('is the delta per second', () => {
    expect(counterRate(1000, 1500, 500)).toBe(1000)
    expect(counterRate(0, 0, 1000)).toBe(0)
  })

  it('claims no rate across a counter reset, a missing value or time that did not advance', () => {
    expect(counterRate(5_000_000, 100, 500)).toBeNull()
    expect(counterRate(null, 100, 500)).toBeNull()
    expect(counterRate(100, null, 500)).toBeNull()
    expect(counterRate(100, 200, 0)).toBeNull()
    expect(counterRate(100, 200, -500)).toBeNull()
  })
})

describe('deriveRates', () => {
  it('turns counters into per-second rates between consecutive samples, first point without rates', () => {
    const points = deriveRates([sample(0), sample(500), sample(1000)])
    expect(points.map((p) => p.bytes_sent_per_s)).toEqual([null, 2000, 2000])
    expect(points.map((p) => p.bytes_received_per_s)).toEqual([null, 4000, 4000])
    expect(points.map((p) => p.interrupts_per_s)).toEqual([null, 1000, 1000])
    expect(points.map((p) => p.cpu_usage)).toEqual([10, 10, 10])
  })

  it('sorts by time and drops a duplicate time (a replayed record)', () => {
    const points = deriveRates([sample(1000), sample(0), sample(500), sample(500)])
    expect(points.map((p) => p.time - T0)).toEqual([0, 500, 1000])
    expect(points[2]!.bytes_sent_per_s).toBe(2000)
  })

  it('gives no rate for the interval of a reboot, and rates again after it', () => {
    const points = deriveRates([sample(0), sample(500, { bytes_sent: 10 }), sample(1000, { bytes_sent: 1010 })])
    expect(points.map((p) => p.bytes_sent_per_s)).toEqual([null, null, 2000])
    expect(points.every((p) => p.bytes_sent_per_s === null || p.bytes_sent_per_s >= 0)).toBe(true)
  })
})

describe('downsample', () => {
  const point = (offsetMs: number, cpu: number | null): ChartPoint => ({
    time: T0 + offsetMs, cpu_usage: cpu, memory_usage: 1, disk_usage: null, bytes_sent_per_s: 100, bytes_received_per_s: null, interrupts_per_s: 3,
  })

  it('averages each epoch-aligned bucket and draws it at its start', () => {
    const out = downsample([point(0, 10), point(20_000, 20), point(59_999, 30), point(60_000, 50), point(61_000, 70)], 60_000)
    expect(out.map((p) => p.time - T0)).toEqual([0, 60_000])
    expect(out.map((p) => p.cpu_usage)).toEqual([20, 60])
    expect(out.map((p) => p.bytes_sent_per_s)).toEqual([100, 100])
  })

  it('leaves nulls out of the mean and keeps null where a field never had a value', () => {
    const out = downsample([point(0, null), point(1000, 30), point(2000, null)], 60_000)
    expect(out[0]!.cpu_usage).toBe(30)
    expect(out[0]!.disk_usage).toBeNull()
  })

  it('reduces 24 h of 500 ms samples to one point a minute', () => {
    const samples: Sample[] = []
    for (let t = 0; t < 24 * 3600_000; t += 500) samples.push(sample(t, { cpu_usage: (t / 500) % 2 === 0 ? 0 : 100 }))
    const points = chartSeries(samples, '24h')
    expect(points).toHaveLength(1440)
    expect(points.every((p) => p.cpu_usage === 50)).toBe(true)
    expect(points.slice(1).every((p) => p.bytes_sent_per_s === 2000)).toBe(true)
  })

  it('refuses a bucket of zero', () => {
    expect(() => downsample([], 0)).toThrow(/bucketMs/)
  })
})

describe('gaps', () => {
  it('claims no rate across a gap of more than three usual intervals', () => {
    const samples = [sample(0), sample(500), sample(1000), sample(40_000), sample(40_500)]
    const points = chartSeries(samples, '5m').filter((p) => p.time > 0 && p.cpu_usage !== null)
    expect(points.map((p) => p.bytes_sent_per_s)).toEqual([null, 2000, 2000, null, 2000])
  })

  it('judges gaps against the collector\'s own interval', () => {
    expect(typicalStepMs([0, 500, 1000, 1500, 9000])).toBe(500)
    expect(typicalStepMs([0, 10_000, 20_000, 30_000])).toBe(10_000)
    expect(typicalStepMs([5])).toBeUndefined()
    expect(gapLimitMs(500)).toBe(5000)
    expect(gapLimitMs(10_000)).toBe(30_000)
    // one sample every 10 s: a continuous line with rates, not a gap at every sample
    const slow = Array.from({ length: 20 }, (_, i) => sample(i * 10_000))
    const points = chartSeries(slow, '5m')
    expect(points).toHaveLength(20)
    expect(points.slice(1).every((p) => p.bytes_sent_per_s === 2000)).toBe(true)
  })

  it('after an outage, a rate again from the second sample on', () => {
    const points = deriveRates([sample(0), sample(500), sample(600_000), sample(600_500)], 5000)
    expect(points.map((p) => p.bytes_sent_per_s)).toEqual([null, 2000, null, 2000])
    expect(chartPoint(sample(600_000), sample(500), 5000).bytes_sent_per_s).toBeNull()
    expect(chartPoint(sample(1000), sample(500), 5000).bytes_sent_per_s).toBe(2000)
  })

  it('breaks the line where samples stopped for longer than the limit', () => {
    const points = markGaps(deriveRates([sample(0), sample(500), sample(60_000), sample(60_500)]), 5000)
    expect(points).toHaveLength(5)
    expect(points[2]).toMatchObject({ cpu_usage: null, bytes_sent_per_s: null })
    expect(points[2]!.time).toBeGreaterThan(points[1]!.time)
    expect(points[2]!.time).toBeLessThan(points[3]!.time)
  })

  it('keeps a continuous stream unbroken', () => {
    const samples = Array.from({ length: 600 }, (_, i) => sample(i * 500))
    expect(chartSeries(samples, '5m')).toHaveLength(600)
  })
})

describe('toColumns', () => {
  it('gives uPlot one array per series, aligned with time', () => {
    const columns = toColumns(deriveRates([sample(0), sample(500)]))
    expect(columns.time).toEqual([T0, T0 + 500])
    expect(columns.bytes_sent_per_s).toEqual([null, 2000])
    expect(columns.cpu_usage).toEqual([10, 10])
  })
})
