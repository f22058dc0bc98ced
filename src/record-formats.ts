import { z } from 'zod'

/**
 * The record of every kpipe topic, one zod schema each (SPEC.md's topic table). Writers type
 * what they build with `z.input<…>`; readers (the sink, the dashboard, audit, tail) parse with
 * the same schema. Reading is lenient where SPEC allows a publisher to leave things out: a
 * missing count reads as 0, a missing percentile as null. The processor's per-record path
 * (transformLogin) builds its JSON text by hand for speed; its output is checked against these
 * schemas by the tests, not at run time.
 */

// ---- shared pieces -----------------------------------------------------------------------

/** A time as written (ISO-8601) or as some publishers give it (epoch ms). */
export const timeSchema = z.union([z.number().finite(), z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'an ISO-8601 time')])

/** A time field as epoch ms. */
export function timeMs(value: string | number): number {
  return typeof value === 'number' ? value : Date.parse(value)
}

// defaults are made afresh for each record (functions, not shared objects): readers add to them
const count = z.number().finite().catch(0)
const maybeNumber = z.number().finite().nullable().catch(null)
/** counts by value (device types, locales, app versions); entries that are not numbers are left out */
const countMap = z.record(z.string(), z.unknown()).catch({}).transform((v): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const [key, n] of Object.entries(v)) if (typeof n === 'number' && Number.isFinite(n)) out[key] = n
  return out
})

/** The lineage headers every derived record carries (SPEC.md). */
export const lineageSchema = z.object({
  'source-topic': z.string().min(1),
  'source-partition': z.string().refine(isPartitionText, 'a partition: decimal digits, 0 to 2147483647').transform(Number),
  'source-offset': z.string().refine(isOffsetText, 'an offset: decimal digits, 0 to 2^63 - 1').transform((s) => BigInt(s)),
})
export type Lineage = { topic: string; partition: number; offset: bigint }

/**
 * A record's lineage from its headers, or undefined when it has none (or a broken one). The one
 * reader of the three headers (audit, replay): a partition or offset is decimal digits only, as
 * kpipe writes them; " 3", "3.0", "0x3", "1e3" or an empty value is broken, not 3 or 0.
 */
export function readLineage(headers: Map<string, Buffer> | undefined): Lineage | undefined {
  if (!headers) return undefined
  const parsed = lineageSchema.safeParse({
    'source-topic': headers.get('source-topic')?.toString('utf8'),
    'source-partition': headers.get('source-partition')?.toString('utf8'),
    'source-offset': headers.get('source-offset')?.toString('utf8'),
  })
  if (!parsed.success) return undefined
  return { topic: parsed.data['source-topic'], partition: parsed.data['source-partition'], offset: parsed.data['source-offset'] }
}

const MAX_PARTITION = 2_147_483_647
const MAX_OFFSET = 2n ** 63n - 1n

/** A Kafka partition written in decimal digits: 0 to 2^31 - 1 (an int32). */
export function isPartitionText(text: string): boolean {
  return /^\d{1,10}$/.test(text) && Number(text) <= MAX_PARTITION
}

/** A Kafka offset written in decimal digits: 0 to 2^63 - 1 (an int64). */
export function isOffsetText(text: string): boolean {
  return /^\d{1,19}$/.test(text) && BigInt(text) <= MAX_OFFSET
}

// ---- user-login --------------------------------------------------------------------------

/** `user-login`: the raw login event as the generator (or any producer) writes it. */
export const loginEventSchema = z.looseObject({
  user_id: z.string(),
  app_version: z.string(),
  device_type: z.string(),
  ip: z.string(),
  locale: z.string(),
  device_id: z.string(),
  /** epoch seconds, string or number */
  timestamp: z.union([z.string(), z.number()]),
})
export type LoginEvent = z.input<typeof loginEventSchema>

// ---- processed-output and cleaned-data ---------------------------------------------------

/** `processed-output`: the event with `ip` masked, `device_id` pseudonymised, `login_time` added; other fields pass through. */
export const processedEventSchema = z.looseObject({
  user_id: z.string(),
  app_version: z.string(),
  device_type: z.string(),
  ip: z.string(),
  locale: z.string(),
  device_id: z.string().regex(/^[0-9a-f]{64}$/),
  timestamp: z.number(),
  login_time: z.string(),
})
export type ProcessedEvent = z.input<typeof processedEventSchema>

export const FILTER_REASONS = ['stale', 'app_version'] as const
/** `cleaned-data`: the transformed event (never raw personal data), why it was filtered out, in words. */
export const filteredRecordSchema = z.object({
  reason: z.enum(FILTER_REASONS),
  event: processedEventSchema,
  detail: z.string(),
})
export type FilteredRecord = z.input<typeof filteredRecordSchema>

// ---- processed-errors --------------------------------------------------------------------

export const LOGIN_ERROR_TYPES = ['invalid_json', 'missing_fields', 'invalid_field'] as const
/** where an input record was */
const sourceSchema = z.object({ topic: z.string(), partition: z.number().int().nonnegative(), offset: z.union([z.number(), z.string()]).transform(String) })

/**
 * `processed-errors`: what went wrong, where the input was, and the raw payload for replay
 * (UTF-8 text, base64, or omitted when too large: `raw_bytes` then says how large).
 */
export const loginErrorRecordSchema = z.object({
  error_type: z.string(),
  error: z.string().catch(''),
  fields: z.array(z.unknown()).catch([]).transform((fields) => fields.filter((f): f is string => typeof f === 'string')),
  user_id: z.string().nullable().catch(null),
  source: sourceSchema.nullable().catch(null),
  raw: z.string().nullable().optional(),
  raw_encoding: z.enum(['utf8', 'base64', 'omitted']).optional(),
  raw_bytes: z.number().int().nonnegative().optional(),
  time: timeSchema.nullable().catch(null),
})
export type LoginErrorRecord = z.input<typeof loginErrorRecordSchema>

// ---- summary-output ----------------------------------------------------------------------

/** Counts of outcomes; the categories count valid events (processed or filtered). */
export const outcomeCountsSchema = z.object({
  received: count,
  processed: count,
  filtered: z.object({ stale: count, app_version: count }).catch(() => ({ stale: 0, app_version: 0 })),
  errors: z.object({ invalid_json: count, missing_fields: count, invalid_field: count }).catch(() => ({ invalid_json: 0, missing_fields: 0, invalid_field: 0 })),
  device_types: countMap,
  locales: countMap,
  app_versions: countMap,
})
export type OutcomeCountsRecord = z.output<typeof outcomeCountsSchema>

export function emptyCounts(): OutcomeCountsRecord {
  return outcomeCountsSchema.parse({})
}

/** `summary-output`: counts since start and for the window, per processor instance. */
export const summaryRecordSchema = z.object({
  instance_id: z.string().min(1),
  time: timeSchema,
  window_start: timeSchema.nullable().catch(null),
  window_end: timeSchema.nullable().catch(null),
  total: outcomeCountsSchema,
  window: outcomeCountsSchema.catch(emptyCounts),
  /** present and true on the summary an instance publishes as it stops: its counts leave the live totals */
  final: z.literal(true).optional().catch(undefined),
})
export type SummaryRecord = z.input<typeof summaryRecordSchema>

// ---- metrics-output ----------------------------------------------------------------------

const percentilesSchema = z.object({ p50: maybeNumber, p95: maybeNumber, p99: maybeNumber, max: maybeNumber }).catch(() => ({ p50: null, p95: null, p99: null, max: null }))
const lagEntrySchema = z.object({ topic: z.string(), partition: z.number().finite(), lag: z.number().finite() })
export type PartitionLag = z.output<typeof lagEntrySchema>

/** `metrics-output`, METRICS_MODE=interval: one record per second per instance. */
export const intervalMetricsSchema = z.object({
  mode: z.literal('interval'),
  instance_id: z.string(),
  time: timeSchema,
  interval_ms: maybeNumber,
  messages_in: maybeNumber,
  throughput_per_s: maybeNumber,
  outputs: z.object({ processed: maybeNumber, filtered: maybeNumber, errors: maybeNumber }).catch(() => ({ processed: null, filtered: null, errors: null })),
  latency_ms: percentilesSchema,
  event_age_ms: percentilesSchema,
  // well-formed entries only
  consumer_lag: z.array(z.unknown()).catch([]).transform((list) => list.flatMap((l) => {
    const entry = lagEntrySchema.safeParse(l)
    return entry.success ? [entry.data] : []
  })),
})
export type IntervalMetricsRecord = z.input<typeof intervalMetricsSchema>

/** `metrics-output`, METRICS_MODE=per-message: one record per input message, as the original pipeline did. */
export const perMessageMetricsSchema = z.object({
  mode: z.literal('per-message'),
  message_id: z.string().optional(),
  /** ms */
  processing_time: z.number().optional(),
  topic: z.string().optional(),
  timestamp: z.union([z.string(), z.number()]).optional(),
})
export type PerMessageMetricsRecord = z.input<typeof perMessageMetricsSchema>

export const metricsRecordSchema = z.discriminatedUnion('mode', [intervalMetricsSchema, perMessageMetricsSchema])

// ---- performance -------------------------------------------------------------------------

/** The numeric columns of the `performance` table, in table order (and the order of the CSV line). */
export const SAMPLE_COLUMNS = ['cpu_usage', 'memory_usage', 'cpu_interrupts', 'cpu_calls', 'memory_used', 'memory_free', 'bytes_sent', 'bytes_received', 'disk_usage'] as const
export type SampleColumn = (typeof SAMPLE_COLUMNS)[number]
/** Columns stored as numeric(5,2) percentages; the others are numeric(18,0) counts of things or bytes. */
export const PERCENT_COLUMNS: ReadonlySet<SampleColumn> = new Set(['cpu_usage', 'memory_usage', 'disk_usage'])
/** counters and byte counts stay below numeric(18,0)'s limit */
export const MAX_COUNT = 1e18

// (z.number() refuses NaN and ±Infinity)
const percent = z.number().min(0).max(100).nullish()
const counter = z.number().min(0).lt(MAX_COUNT).nullish()

/**
 * `performance`, JSON: one host metrics sample as the collector writes it (keyed by host).
 * `host` may be left out: the record key (else `unknown`) names it then. Extra fields
 * (context switches, soft interrupts, …) are welcome and not stored.
 */
export const hostSampleSchema = z.object({
  host: z.string().regex(/\S/, 'expected a non-empty string').nullish(),
  time: z.string(),
  cpu_usage: percent,
  memory_usage: percent,
  cpu_interrupts: counter,
  cpu_calls: counter,
  memory_used: counter,
  memory_free: counter,
  bytes_sent: counter,
  bytes_received: counter,
  disk_usage: percent,
})
export type HostSampleRecord = z.input<typeof hostSampleSchema>

/**
 * `performance`, the original pipeline's comma-separated line: naive local time, then the
 * columns in table order (`2024-11-20 10:00:00.123456, 12.5, 45.2, 123,0,7340032000,…`);
 * empty, `null`, `none` or `nan` is no value. The host is the record key, else `unknown`.
 */
export const hostSampleCsvSchema = z.string().transform((line, context) => {
  const fields = line.split(',').map((f) => f.trim())
  if (fields.length !== SAMPLE_COLUMNS.length + 1) {
    context.addIssue({ code: 'custom', message: `expected ${SAMPLE_COLUMNS.length + 1} comma-separated fields (time and ${SAMPLE_COLUMNS.join(', ')}), got ${fields.length}` })
    return z.NEVER
  }
  const sample: Record<string, unknown> = { time: fields[0] }
  for (const [i, column] of SAMPLE_COLUMNS.entries()) {
    const field = fields[i + 1]!
    sample[column] = field === '' || /^(null|none|nan)$/i.test(field) ? null : /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(field) ? Number(field) : field
  }
  return sample
}).pipe(hostSampleSchema)

/** `performance-errors`: a record the sink could not store, with the raw payload as received. */
export const sampleErrorRecordSchema = z.object({
  error_type: z.string(),
  error: z.string(),
  host: z.string().nullable(),
  source_topic: z.string(),
  source_partition: z.number().int().nonnegative(),
  source_offset: z.string(),
  raw: z.string().optional(),
  raw_base64: z.string().optional(),
})
export type SampleErrorRecord = z.input<typeof sampleErrorRecordSchema>
