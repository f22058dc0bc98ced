import { isUtf8 } from 'node:buffer'
import type { z, ZodSafeParseResult } from 'zod'
import { hostSampleCsvSchema, hostSampleSchema, PERCENT_COLUMNS, SAMPLE_COLUMNS, type SampleColumn } from '../../record-formats.ts'

/** A sample ready for the `performance` table: time as ISO-8601 UTC with microseconds, numbers as text. */
export interface SampleRow {
  host: string
  time: string
  values: Record<SampleColumn, string | null>
}

export type DecodeResult = { ok: true; row: SampleRow } | { ok: false; errorType: 'invalid_encoding' | 'invalid_json' | 'invalid_sample' | 'invalid_csv'; error: string }

const fail = (errorType: Extract<DecodeResult, { ok: false }>['errorType'], error: string): DecodeResult => ({ ok: false, errorType, error })

/**
 * A `performance` record → a row, or why not. Two formats: the JSON sample of SPEC.md, and the
 * original pipeline's comma-separated line (`time, cpu_usage, memory_usage, cpu_interrupts,
 * cpu_calls, memory_used, memory_free, bytes_sent, bytes_received, disk_usage`, naive local
 * time), each checked by its schema in src/record-formats.ts. The host is the sample's own
 * `host`, else the record key, else `unknown`. Every value is checked against its column here,
 * so that one bad record can never make the database refuse a whole batch. The dashboard reads
 * samples through this function too: what the sink stores, the dashboard shows.
 */
export function decodeSample(value: Buffer | undefined, key: Buffer | undefined): DecodeResult {
  if (!value || value.length === 0) return fail('invalid_sample', 'empty record value')
  const text = utf8(value)
  if (text === undefined) return fail('invalid_encoding', 'record value is not UTF-8 text')
  const keyHost = key && key.length > 0 ? utf8(key)?.trim() || undefined : undefined
  const trimmed = text.trim()
  if (trimmed.startsWith('{')) return decodeJson(trimmed, keyHost)
  if (/^\d{4}-\d{2}-\d{2}[ T]/.test(trimmed)) return toRow(hostSampleCsvSchema.safeParse(trimmed), 'invalid_csv', keyHost)
  return fail('invalid_json', 'neither a JSON sample nor a comma-separated sample line')
}

function utf8(bytes: Buffer): string | undefined {
  return isUtf8(bytes) ? bytes.toString('utf8') : undefined
}

function decodeJson(text: string, keyHost: string | undefined): DecodeResult {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return fail('invalid_json', `not valid JSON: ${(error as Error).message}`)
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return fail('invalid_json', 'not a JSON object')
  return toRow(hostSampleSchema.safeParse(parsed), 'invalid_sample', keyHost)
}

/** A sample that passed its schema → the row; the host is the sample's own, else the key's, else `unknown`. */
function toRow(parsed: ZodSafeParseResult<z.output<typeof hostSampleSchema>>, errorType: 'invalid_sample' | 'invalid_csv', keyHost: string | undefined): DecodeResult {
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    return fail(errorType, issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message)
  }
  const sample = parsed.data
  const time = normaliseTime(sample.time)
  if (!time) return fail(errorType, `time: ${JSON.stringify(sample.time)} is not an ISO-8601 timestamp`)
  const values = {} as SampleRow['values']
  for (const column of SAMPLE_COLUMNS) {
    const raw = sample[column]
    // text, exact: percentages to two decimals, counts whole (below 10^21 String() never uses an exponent)
    values[column] = raw === undefined || raw === null ? null : String(PERCENT_COLUMNS.has(column) ? Math.round(raw * 100) / 100 : Math.round(raw))
  }
  return { ok: true, row: { host: sample.host?.trim() ?? keyHost ?? 'unknown', time, values } }
}

/** '0'…'9' at `i`: its value, else -1. */
function digitAt(text: string, i: number): number {
  const c = text.charCodeAt(i) - 48
  return c >= 0 && c <= 9 ? c : -1
}

/** `text[from, from + length)` as a number when all of it is digits, else -1. */
function digitsAt(text: string, from: number, length: number): number {
  let value = 0
  for (let i = from; i < from + length; i++) {
    const d = digitAt(text, i)
    if (d < 0) return -1
    value = value * 10 + d
  }
  return value
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/**
 * What the collector writes (`Date#toISOString`, `2026-11-24T10:00:00.500Z`), a real moment from
 * 1970 on: checked digit by digit instead of a Date parse and print, which were about a third
 * of the sink's decoding of a sample (docs/benchmarks.md, "The sink's slices overlap"). Anything
 * else takes the general path.
 */
export function isCollectorTime(text: string): boolean {
  if (text.length !== 24 || text.charCodeAt(4) !== 45 /* - */ || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 84 /* T */ ||
    text.charCodeAt(13) !== 58 /* : */ || text.charCodeAt(16) !== 58 || text.charCodeAt(19) !== 46 /* . */ || text.charCodeAt(23) !== 90 /* Z */) return false
  const year = digitsAt(text, 0, 4)
  const month = digitsAt(text, 5, 2)
  const day = digitsAt(text, 8, 2)
  const hour = digitsAt(text, 11, 2)
  const minute = digitsAt(text, 14, 2)
  const second = digitsAt(text, 17, 2)
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  // digitsAt gives -1 for anything but digits: every lower bound below refuses it
  return year >= 1970 && month >= 1 && month <= 12 && day >= 1 && day <= DAYS_IN_MONTH[month - 1]! + (month === 2 && leap ? 1 : 0) &&
    hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 && second >= 0 && second <= 59 && digitsAt(text, 20, 3) >= 0
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i

/**
 * An ISO-8601 timestamp → ISO-8601 UTC with microseconds (what timestamptz keeps). Without a
 * zone it is local time of the sink's machine, as the original pipeline's naive timestamps were.
 */
export function normaliseTime(text: string): string | undefined {
  if (isCollectorTime(text)) return `${text.slice(0, 23)}000Z`
  const m = TIMESTAMP.exec(text.trim())
  if (!m) return undefined
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number, number]
  const second = Number(m[6] ?? 0)
  const fraction = (m[7] ?? '').padEnd(6, '0').slice(0, 6)
  const millis = Number(fraction.slice(0, 3))
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return undefined
  let epoch: number
  if (m[8]) {
    epoch = Date.UTC(year, month - 1, day, hour, minute, second, millis)
    if (m[8].toUpperCase() !== 'Z') {
      const sign = m[8][0] === '-' ? -1 : 1
      const digits = m[8].slice(1).replace(':', '')
      epoch -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0)) * 60_000
    }
  } else {
    epoch = new Date(year, month - 1, day, hour, minute, second, millis).getTime()
  }
  const check = m[8] ? new Date(Date.UTC(year, month - 1, day)) : new Date(year, month - 1, day)
  // Date rolls 31 February over into March; refuse it instead
  if (Number.isNaN(epoch) || (m[8] ? check.getUTCDate() : check.getDate()) !== day || year < 1970) return undefined
  const iso = new Date(epoch).toISOString()
  return `${iso.slice(0, 23)}${fraction.slice(3)}Z`
}
