/**
 * The login pipeline panel's state, built from the processor's `summary-output`,
 * `metrics-output` and `processed-errors` records. Several processor instances may publish:
 * each one's latest summary counts, summed. Pure; records that do not fit are reported as
 * such and never throw.
 */

import type { z } from 'zod'
import {
  emptyCounts,
  intervalMetricsSchema,
  loginErrorRecordSchema,
  metricsRecordSchema,
  summaryRecordSchema,
  timeMs,
  type OutcomeCountsRecord,
} from '../../record-formats.ts'

/** The counts of a summary record, as its schema reads them. */
export type Counts = OutcomeCountsRecord

export interface Summary {
  instance_id: string
  time: number
  window_start: number | null
  window_end: number | null
  total: Counts
  window: Counts
  /** the instance's last summary, published as it stopped */
  final: boolean
}

/** An interval metrics record as its schema reads it, its time in epoch ms. */
export type ProcessingMetrics = Omit<z.output<typeof intervalMetricsSchema>, 'mode' | 'time'> & { time: number }

export interface LoginError {
  time: number | null
  error_type: string
  error: string
  fields: string[]
  user_id: string | null
  source: { topic: string; partition: number; offset: string } | null
}

/** What a `metrics-output` record turned out to be. */
export type MetricsRecord = { kind: 'interval'; metrics: ProcessingMetrics } | { kind: 'per-message' } | { kind: 'invalid' }

function parseJson(bytes: Buffer | string | undefined): unknown {
  if (bytes === undefined) return undefined
  try {
    return JSON.parse(bytes.toString())
  } catch {
    return undefined
  }
}

/** epoch ms of a time that passed timeSchema, null for null */
const ms = (value: string | number | null): number | null => (value === null ? null : timeMs(value))

/** A `summary-output` record, or undefined when it is not one. */
export function parseSummary(bytes: Buffer | string | undefined): Summary | undefined {
  const parsed = summaryRecordSchema.safeParse(parseJson(bytes))
  if (!parsed.success) return undefined
  const v = parsed.data
  return { ...v, time: timeMs(v.time), window_start: ms(v.window_start), window_end: ms(v.window_end), final: v.final === true }
}

/** A `metrics-output` record: interval metrics, a per-message record (valid, not charted), or invalid. */
export function parseMetrics(bytes: Buffer | string | undefined): MetricsRecord {
  const parsed = metricsRecordSchema.safeParse(parseJson(bytes))
  if (!parsed.success) return { kind: 'invalid' }
  const v = parsed.data
  if (v.mode === 'per-message') return { kind: 'per-message' }
  const { mode: _mode, ...metrics } = v
  return { kind: 'interval', metrics: { ...metrics, time: timeMs(v.time) } }
}

/**
 * A `processed-errors` record, without its raw payload: the raw event still holds the
 * personal data (IP address, device id) the pipeline exists to mask, so it stays in Kafka.
 */
export function parseLoginError(bytes: Buffer | string | undefined): LoginError | undefined {
  const parsed = loginErrorRecordSchema.safeParse(parseJson(bytes))
  if (!parsed.success) return undefined
  const v = parsed.data
  return {
    time: ms(v.time),
    error_type: v.error_type,
    error: v.error.slice(0, 500),
    fields: v.fields.slice(0, 20),
    user_id: v.user_id,
    source: v.source,
  }
}

function addMap(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value
}

export function sumCounts(all: readonly Counts[]): Counts {
  const sum = emptyCounts()
  for (const c of all) {
    sum.received += c.received
    sum.processed += c.processed
    sum.filtered.stale += c.filtered.stale
    sum.filtered.app_version += c.filtered.app_version
    sum.errors.invalid_json += c.errors.invalid_json
    sum.errors.missing_fields += c.errors.missing_fields
    sum.errors.invalid_field += c.errors.invalid_field
    addMap(sum.device_types, c.device_types)
    addMap(sum.locales, c.locales)
    addMap(sum.app_versions, c.app_versions)
  }
  return sum
}

/** `/api/summary`: the latest summary of every running instance, and their sum. */
export interface SummaryView {
  instances: { instance_id: string; time: string }[]
  /** instances that stopped (a final summary) or went silent (no interval metrics for `staleAfterMs`): not in the sums */
  stopped: { instance_id: string; time: string }[]
  updated_at: string | null
  total: Counts
  window: Counts
}

/** One second of the throughput chart, all instances together. */
export interface ProcessingPoint {
  time: number
  throughput_per_s: number
  latency_p99_ms: number | null
}

/** `/api/processing`: the latest interval metrics of every instance, combined, and the last minutes of them. */
export interface ProcessingView {
  instances: string[]
  updated_at: string | null
  throughput_per_s: number | null
  latency_ms: { p50: number | null; p95: number | null; p99: number | null; max: number | null }
  outputs: { processed: number; filtered: number; errors: number }
  consumer_lag: { topic: string; partition: number; lag: number }[]
  history: { time: number[]; throughput_per_s: number[]; latency_p99_ms: (number | null)[] }
  per_message_records: number
}

/** Lag per partition as its latest reporter saw it (after a rebalance two instances may have reported the same one). */
function latestLag(metrics: readonly ProcessingMetrics[]): { topic: string; partition: number; lag: number }[] {
  const lag = new Map<string, { topic: string; partition: number; lag: number }>()
  for (const m of [...metrics].sort((a, b) => a.time - b.time)) for (const l of m.consumer_lag) lag.set(`${l.topic}\0${l.partition}`, l)
  return [...lag.values()].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)
}

const maxOf = (values: (number | null)[]): number | null => values.reduce<number | null>((m, v) => (v === null ? m : m === null ? v : Math.max(m, v)), null)

/**
 * The login panel's state. The totals are those of the running instances: one that published
 * its final summary (it stopped), or whose interval metrics are older than `staleAfterMs` (it
 * was killed), is listed as stopped and left out, so a restart does not count the previous
 * run's events twice beside the new run's. Its interval metrics stop counting towards "now"
 * after `staleAfterMs` too.
 */
export class LoginStats {
  readonly #summaries = new Map<string, Summary>()
  readonly #metrics = new Map<string, ProcessingMetrics>()
  /** per-second buckets of combined throughput, newest last */
  readonly #history = new Map<number, { throughput: Map<string, number>; p99: number | null }>()
  readonly #errors: LoginError[] = []
  perMessageRecords = 0

  constructor(
    readonly historyMs = 5 * 60_000,
    readonly maxErrors = 50,
    readonly staleAfterMs = 15_000,
  ) {}

  addSummary(summary: Summary): void {
    const seen = this.#summaries.get(summary.instance_id)
    if (!seen || seen.time <= summary.time) this.#summaries.set(summary.instance_id, summary)
  }

  addMetrics(record: MetricsRecord): void {
    if (record.kind === 'per-message') this.perMessageRecords++
    if (record.kind !== 'interval') return
    const m = record.metrics
    const seen = this.#metrics.get(m.instance_id)
    if (!seen || seen.time <= m.time) this.#metrics.set(m.instance_id, m)
    const second = Math.floor(m.time / 1000) * 1000
    let bucket = this.#history.get(second)
    if (!bucket) {
      bucket = { throughput: new Map(), p99: null }
      this.#history.set(second, bucket)
    }
    if (m.throughput_per_s !== null) bucket.throughput.set(m.instance_id, m.throughput_per_s)
    bucket.p99 = maxOf([bucket.p99, m.latency_ms.p99])
    const oldest = second - this.historyMs
    for (const key of this.#history.keys()) if (key < oldest) this.#history.delete(key)
  }

  addError(error: LoginError): void {
    this.#errors.unshift(error)
    if (this.#errors.length > this.maxErrors) this.#errors.length = this.maxErrors
  }

  summary(now = Date.now()): SummaryView {
    const everyone = [...this.#summaries.values()].sort((a, b) => a.instance_id.localeCompare(b.instance_id))
    const silent = (s: Summary) => {
      const metrics = this.#metrics.get(s.instance_id)
      return metrics !== undefined && now - metrics.time > this.staleAfterMs
    }
    const all = everyone.filter((s) => !s.final && !silent(s))
    const stopped = everyone.filter((s) => !all.includes(s))
    const latest = all.reduce<number | null>((m, s) => (m === null || s.time > m ? s.time : m), null)
    const listed = (s: Summary) => ({ instance_id: s.instance_id, time: new Date(s.time).toISOString() })
    return {
      instances: all.map(listed),
      stopped: stopped.map(listed),
      updated_at: latest === null ? null : new Date(latest).toISOString(),
      total: sumCounts(all.map((s) => s.total)),
      window: sumCounts(all.map((s) => s.window)),
    }
  }

  processing(now = Date.now()): ProcessingView {
    const all = [...this.#metrics.values()]
    const current = all.filter((m) => now - m.time <= this.staleAfterMs)
    const latest = all.reduce<number | null>((m, s) => (m === null || s.time > m ? s.time : m), null)
    const seconds = [...this.#history.keys()].sort((a, b) => a - b)
    return {
      instances: all.map((m) => m.instance_id).sort(),
      updated_at: latest === null ? null : new Date(latest).toISOString(),
      throughput_per_s: current.length === 0 ? null : current.reduce((s, m) => s + (m.throughput_per_s ?? 0), 0),
      latency_ms: {
        p50: maxOf(current.map((m) => m.latency_ms.p50)),
        p95: maxOf(current.map((m) => m.latency_ms.p95)),
        p99: maxOf(current.map((m) => m.latency_ms.p99)),
        max: maxOf(current.map((m) => m.latency_ms.max)),
      },
      outputs: {
        processed: current.reduce((s, m) => s + (m.outputs.processed ?? 0), 0),
        filtered: current.reduce((s, m) => s + (m.outputs.filtered ?? 0), 0),
        errors: current.reduce((s, m) => s + (m.outputs.errors ?? 0), 0),
      },
      consumer_lag: latestLag(current),
      history: {
        time: seconds,
        throughput_per_s: seconds.map((s) => [...this.#history.get(s)!.throughput.values()].reduce((a, b) => a + b, 0)),
        latency_p99_ms: seconds.map((s) => this.#history.get(s)!.p99),
      },
      per_message_records: this.perMessageRecords,
    }
  }

  errors(): LoginError[] {
    return [...this.#errors]
  }
}
