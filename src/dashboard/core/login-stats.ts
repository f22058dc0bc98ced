/**
 * The login pipeline panel's state, built from the processor's `summary-output`,
 * `metrics-output` and `processed-errors` records. Several processor instances may publish:
 * each one's latest summary counts, summed. Pure; records that do not fit are reported as
 * such and never throw.
 */

export interface Counts {
  received: number
  processed: number
  filtered: { stale: number; app_version: number }
  errors: { invalid_json: number; missing_fields: number; invalid_field: number }
  device_types: Record<string, number>
  locales: Record<string, number>
  app_versions: Record<string, number>
}

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

export interface ProcessingMetrics {
  instance_id: string
  time: number
  interval_ms: number | null
  messages_in: number | null
  throughput_per_s: number | null
  outputs: { processed: number | null; filtered: number | null; errors: number | null }
  latency_ms: { p50: number | null; p95: number | null; p99: number | null; max: number | null }
  event_age_ms: { p50: number | null; p95: number | null; p99: number | null; max: number | null }
  consumer_lag: { topic: string; partition: number; lag: number }[]
}

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

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)
const count = (v: unknown): number => num(v) ?? 0
const time = (v: unknown): number | null => {
  if (typeof v === 'number' && Number.isFinite(v)) return v
  if (typeof v !== 'string') return null
  const ms = Date.parse(v)
  return Number.isNaN(ms) ? null : ms
}

function countMap(v: unknown): Record<string, number> {
  const out: Record<string, number> = {}
  if (!isObject(v)) return out
  for (const [key, value] of Object.entries(v)) {
    const n = num(value)
    if (n !== null) out[key] = n
  }
  return out
}

export function emptyCounts(): Counts {
  return {
    received: 0,
    processed: 0,
    filtered: { stale: 0, app_version: 0 },
    errors: { invalid_json: 0, missing_fields: 0, invalid_field: 0 },
    device_types: {},
    locales: {},
    app_versions: {},
  }
}

function toCounts(v: unknown): Counts | undefined {
  if (!isObject(v)) return undefined
  const filtered = isObject(v.filtered) ? v.filtered : {}
  const errors = isObject(v.errors) ? v.errors : {}
  return {
    received: count(v.received),
    processed: count(v.processed),
    filtered: { stale: count(filtered.stale), app_version: count(filtered.app_version) },
    errors: { invalid_json: count(errors.invalid_json), missing_fields: count(errors.missing_fields), invalid_field: count(errors.invalid_field) },
    device_types: countMap(v.device_types),
    locales: countMap(v.locales),
    app_versions: countMap(v.app_versions),
  }
}

function parseJson(bytes: Buffer | string | undefined): unknown {
  if (bytes === undefined) return undefined
  try {
    return JSON.parse(bytes.toString())
  } catch {
    return undefined
  }
}

/** A `summary-output` record, or undefined when it is not one. */
export function parseSummary(bytes: Buffer | string | undefined): Summary | undefined {
  const v = parseJson(bytes)
  if (!isObject(v) || typeof v.instance_id !== 'string' || v.instance_id === '') return undefined
  const at = time(v.time)
  const total = toCounts(v.total)
  if (at === null || !total) return undefined
  return {
    instance_id: v.instance_id,
    time: at,
    window_start: time(v.window_start),
    window_end: time(v.window_end),
    total,
    window: toCounts(v.window) ?? emptyCounts(),
    final: v.final === true,
  }
}

function percentiles(v: unknown) {
  const p = isObject(v) ? v : {}
  return { p50: num(p.p50), p95: num(p.p95), p99: num(p.p99), max: num(p.max) }
}

/** A `metrics-output` record: interval metrics, a per-message record (valid, not charted), or invalid. */
export function parseMetrics(bytes: Buffer | string | undefined): MetricsRecord {
  const v = parseJson(bytes)
  if (!isObject(v)) return { kind: 'invalid' }
  if (v.mode === 'per-message') return { kind: 'per-message' }
  if (v.mode !== 'interval' || typeof v.instance_id !== 'string') return { kind: 'invalid' }
  const at = time(v.time)
  if (at === null) return { kind: 'invalid' }
  const outputs = isObject(v.outputs) ? v.outputs : {}
  const lag = Array.isArray(v.consumer_lag) ? v.consumer_lag : []
  return {
    kind: 'interval',
    metrics: {
      instance_id: v.instance_id,
      time: at,
      interval_ms: num(v.interval_ms),
      messages_in: num(v.messages_in),
      throughput_per_s: num(v.throughput_per_s),
      outputs: { processed: num(outputs.processed), filtered: num(outputs.filtered), errors: num(outputs.errors) },
      latency_ms: percentiles(v.latency_ms),
      event_age_ms: percentiles(v.event_age_ms),
      consumer_lag: lag.filter(isObject).flatMap((l) =>
        typeof l.topic === 'string' && num(l.partition) !== null && num(l.lag) !== null ? [{ topic: l.topic, partition: num(l.partition)!, lag: num(l.lag)! }] : [],
      ),
    },
  }
}

/**
 * A `processed-errors` record, without its raw payload: the raw event still holds the
 * personal data (IP address, device id) the pipeline exists to mask, so it stays in Kafka.
 */
export function parseLoginError(bytes: Buffer | string | undefined): LoginError | undefined {
  const v = parseJson(bytes)
  if (!isObject(v) || typeof v.error_type !== 'string') return undefined
  const s = isObject(v.source) ? v.source : undefined
  return {
    time: time(v.time),
    error_type: v.error_type,
    error: typeof v.error === 'string' ? v.error.slice(0, 500) : '',
    fields: Array.isArray(v.fields) ? v.fields.filter((f): f is string => typeof f === 'string').slice(0, 20) : [],
    user_id: typeof v.user_id === 'string' ? v.user_id : null,
    source:
      s && typeof s.topic === 'string' && num(s.partition) !== null && (typeof s.offset === 'string' || typeof s.offset === 'number')
        ? { topic: s.topic, partition: num(s.partition)!, offset: String(s.offset) }
        : null,
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
