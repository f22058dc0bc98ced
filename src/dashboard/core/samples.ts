/**
 * Host metrics as the dashboard draws them: samples parsed from the `performance` topic or
 * read from PostgreSQL, rates derived from the cumulative counters, and long ranges reduced
 * to a few hundred points. Pure functions; no I/O.
 */

import { decodeSample } from '../../host-metrics/sink/decode.ts'

/** One host metrics sample (the `performance` topic's JSON value, times in epoch ms). */
export interface Sample {
  host: string
  time: number
  cpu_usage: number | null
  memory_usage: number | null
  disk_usage: number | null
  cpu_interrupts: number | null
  bytes_sent: number | null
  bytes_received: number | null
  memory_used: number | null
  memory_free: number | null
}

/** A point of a chart: the gauges as sampled, the counters turned into per-second rates. */
export interface ChartPoint {
  time: number
  cpu_usage: number | null
  memory_usage: number | null
  disk_usage: number | null
  bytes_sent_per_s: number | null
  bytes_received_per_s: number | null
  interrupts_per_s: number | null
}

export const CHART_FIELDS = ['cpu_usage', 'memory_usage', 'disk_usage', 'bytes_sent_per_s', 'bytes_received_per_s', 'interrupts_per_s'] as const
export type ChartField = (typeof CHART_FIELDS)[number]

/** The same points column by column, the shape uPlot draws from. */
export type ChartColumns = { time: number[] } & Record<ChartField, (number | null)[]>

export type RangeName = '5m' | '1h' | '24h'

/**
 * Each range, and the bucket its points are averaged into: 5 min stays at full resolution
 * (600 points at 500 ms); 1 h and 24 h are reduced to 720 and 1440 points.
 */
export const RANGES: Record<RangeName, { ms: number; bucketMs: number | null }> = {
  '5m': { ms: 5 * 60_000, bucketMs: null },
  '1h': { ms: 60 * 60_000, bucketMs: 5_000 },
  '24h': { ms: 24 * 60 * 60_000, bucketMs: 60_000 },
}

export function isRangeName(value: unknown): value is RangeName {
  return typeof value === 'string' && Object.hasOwn(RANGES, value)
}

/** A finite number from a JSON number or a numeric string (PostgreSQL's numeric arrives as text), else null. */
export function toNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value)
    return Number.isFinite(n) ? n : null
  }
  return null
}

function toTime(value: unknown): number | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.getTime()
  if (typeof value !== 'string') return null
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? null : ms
}

/**
 * A sample from a JSON object (a `performance` record, or a database row), or undefined when
 * it has no host or no valid time. Missing or non-numeric metrics become null.
 */
export function toSample(value: unknown): Sample | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined
  const v = value as Record<string, unknown>
  const time = toTime(v.time)
  if (typeof v.host !== 'string' || v.host === '' || time === null) return undefined
  return {
    host: v.host,
    time,
    cpu_usage: toNumber(v.cpu_usage),
    memory_usage: toNumber(v.memory_usage),
    disk_usage: toNumber(v.disk_usage),
    cpu_interrupts: toNumber(v.cpu_interrupts),
    bytes_sent: toNumber(v.bytes_sent),
    bytes_received: toNumber(v.bytes_received),
    memory_used: toNumber(v.memory_used),
    memory_free: toNumber(v.memory_free),
  }
}

/**
 * Parses a `performance` record exactly as the sink decodes it (the JSON sample, or the
 * original pipeline's comma-separated line; the host from the sample, else the record key,
 * else `unknown`), so the dashboard shows every sample the sink stores; undefined for a record
 * the sink would route to `performance-errors`.
 */
export function parseSample(bytes: Buffer | string | undefined, key?: Buffer | string): Sample | undefined {
  if (bytes === undefined) return undefined
  const decoded = decodeSample(typeof bytes === 'string' ? Buffer.from(bytes) : bytes, typeof key === 'string' ? Buffer.from(key) : key)
  if (!decoded.ok) return undefined
  const { host, time, values: v } = decoded.row
  return {
    host,
    time: Date.parse(time),
    cpu_usage: toNumber(v.cpu_usage),
    memory_usage: toNumber(v.memory_usage),
    disk_usage: toNumber(v.disk_usage),
    cpu_interrupts: toNumber(v.cpu_interrupts),
    bytes_sent: toNumber(v.bytes_sent),
    bytes_received: toNumber(v.bytes_received),
    memory_used: toNumber(v.memory_used),
    memory_free: toNumber(v.memory_free),
  }
}

/**
 * Per-second rate of a cumulative counter between two samples; null when either value is
 * missing, time did not advance, or the counter went down (a reboot or a counter wrap: the
 * drop is not traffic, so no rate is claimed for that interval).
 */
export function counterRate(previous: number | null, current: number | null, elapsedMs: number): number | null {
  if (previous === null || current === null || !(elapsedMs > 0)) return null
  const delta = current - previous
  if (delta < 0) return null
  return (delta * 1000) / elapsedMs
}

/**
 * A chart point from a sample and the one before it of the same host (undefined for the
 * first). Across a gap longer than `maxGapMs` (the collector was down) no rate is claimed
 * either: an average over the outage would look like traffic at its end.
 */
export function chartPoint(sample: Sample, previous: Sample | undefined, maxGapMs = Infinity): ChartPoint {
  const elapsed = previous ? sample.time - previous.time : 0
  const before = previous && elapsed <= maxGapMs ? previous : undefined
  return {
    time: sample.time,
    cpu_usage: sample.cpu_usage,
    memory_usage: sample.memory_usage,
    disk_usage: sample.disk_usage,
    bytes_sent_per_s: before ? counterRate(before.bytes_sent, sample.bytes_sent, elapsed) : null,
    bytes_received_per_s: before ? counterRate(before.bytes_received, sample.bytes_received, elapsed) : null,
    interrupts_per_s: before ? counterRate(before.cpu_interrupts, sample.cpu_interrupts, elapsed) : null,
  }
}

/** Chart points of one host's samples, in time order (sorted here; duplicates of a time dropped). */
export function deriveRates(samples: readonly Sample[], maxGapMs = Infinity): ChartPoint[] {
  const sorted = [...samples].sort((a, b) => a.time - b.time)
  const points: ChartPoint[] = []
  let previous: Sample | undefined
  for (const sample of sorted) {
    if (previous && sample.time === previous.time) continue
    points.push(chartPoint(sample, previous, maxGapMs))
    previous = sample
  }
  return points
}

/** The usual distance between samples (the median), so gaps are judged against the collector's own interval. */
export function typicalStepMs(times: readonly number[]): number | undefined {
  const steps: number[] = []
  for (let i = 1; i < times.length; i++) if (times[i]! > times[i - 1]!) steps.push(times[i]! - times[i - 1]!)
  if (steps.length === 0) return undefined
  steps.sort((a, b) => a - b)
  return steps[Math.floor(steps.length / 2)]
}

/** Longer than this between two samples is a gap: three usual intervals, at least 5 s. */
export function gapLimitMs(stepMs: number | undefined): number {
  return Math.max(5_000, 3 * (stepMs ?? 0))
}

/**
 * Averages points into buckets of `bucketMs` (aligned to the epoch, so the same data gives
 * the same buckets on every refresh); each bucket is drawn at its start. Nulls are left out
 * of the means; a bucket where a field was always null keeps null for it.
 */
export function downsample(points: readonly ChartPoint[], bucketMs: number): ChartPoint[] {
  if (!(bucketMs > 0)) throw new RangeError(`bucketMs must be positive, got ${bucketMs}`)
  const out: ChartPoint[] = []
  let bucket = Number.NaN
  const sums = new Array<number>(CHART_FIELDS.length).fill(0)
  const counts = new Array<number>(CHART_FIELDS.length).fill(0)
  const flush = () => {
    if (Number.isNaN(bucket)) return
    const point = { time: bucket } as ChartPoint
    CHART_FIELDS.forEach((field, i) => {
      point[field] = counts[i]! > 0 ? sums[i]! / counts[i]! : null
      sums[i] = 0
      counts[i] = 0
    })
    out.push(point)
  }
  for (const point of points) {
    const start = Math.floor(point.time / bucketMs) * bucketMs
    if (start !== bucket) {
      flush()
      bucket = start
    }
    CHART_FIELDS.forEach((field, i) => {
      const value = point[field]
      if (value !== null) {
        sums[i]! += value
        counts[i]!++
      }
    })
  }
  flush()
  return out
}

/**
 * Inserts an all-null point wherever two neighbours are more than `maxGapMs` apart, so a
 * chart shows a break while the collector was down instead of a straight line across it.
 */
export function markGaps(points: readonly ChartPoint[], maxGapMs: number): ChartPoint[] {
  const out: ChartPoint[] = []
  for (let i = 0; i < points.length; i++) {
    const point = points[i]!
    const previous = points[i - 1]
    if (previous && point.time - previous.time > maxGapMs) {
      out.push({ time: previous.time + 1, cpu_usage: null, memory_usage: null, disk_usage: null, bytes_sent_per_s: null, bytes_received_per_s: null, interrupts_per_s: null })
    }
    out.push(point)
  }
  return out
}

/** A range's chart points from one host's samples: rates, then buckets for the long ranges, then gaps. */
export function chartSeries(samples: readonly Sample[], range: RangeName): ChartPoint[] {
  const { bucketMs } = RANGES[range]
  const limit = gapLimitMs(typicalStepMs(samples.map((s) => s.time).sort((a, b) => a - b)))
  const points = deriveRates(samples, limit)
  if (bucketMs === null) return markGaps(points, limit)
  return markGaps(downsample(points, bucketMs), Math.max(bucketMs * 3, limit))
}

export function toColumns(points: readonly ChartPoint[]): ChartColumns {
  const columns = { time: [] as number[] } as ChartColumns
  for (const field of CHART_FIELDS) columns[field] = []
  for (const point of points) {
    columns.time.push(point.time)
    for (const field of CHART_FIELDS) columns[field].push(point[field])
  }
  return columns
}
