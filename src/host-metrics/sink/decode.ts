import { isUtf8 } from 'node:buffer'
import { PERCENT_COLUMNS, SAMPLE_COLUMNS, type SampleColumn } from '../sample.ts'

/** A sample ready for the `performance` table: time as ISO-8601 UTC with microseconds, numbers as text. */
export interface SampleRow {
  host: string
  time: string
  values: Record<SampleColumn, string | null>
}

export type DecodeResult = { ok: true; row: SampleRow } | { ok: false; errorType: 'invalid_encoding' | 'invalid_json' | 'invalid_sample' | 'invalid_csv'; error: string }

const MAX_COUNT = 1e18
const fail = (errorType: Extract<DecodeResult, { ok: false }>['errorType'], error: string): DecodeResult => ({ ok: false, errorType, error })

/**
 * A `performance` record → a row, or why not. Two formats: the JSON sample of SPEC.md, and the
 * original pipeline's comma-separated line (`time, cpu_usage, memory_usage, cpu_interrupts,
 * cpu_calls, memory_used, memory_free, bytes_sent, bytes_received, disk_usage`, naive local
 * time). The host is the sample's own `host`, else the record key, else `unknown`.
 * Every value is checked against its column here, so that one bad record can never make the
 * database refuse a whole batch.
 */
export function decodeSample(value: Buffer | undefined, key: Buffer | undefined): DecodeResult {
  if (!value || value.length === 0) return fail('invalid_sample', 'empty record value')
  const text = utf8(value)
  if (text === undefined) return fail('invalid_encoding', 'record value is not UTF-8 text')
  const keyHost = key && key.length > 0 ? utf8(key)?.trim() || undefined : undefined
  const trimmed = text.trim()
  if (trimmed.startsWith('{')) return decodeJson(trimmed, keyHost)
  if (/^\d{4}-\d{2}-\d{2}[ T]/.test(trimmed)) return decodeCsv(trimmed, keyHost)
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
  const sample = parsed as Record<string, unknown>
  let host = keyHost ?? 'unknown'
  if (sample.host !== undefined && sample.host !== null) {
    if (typeof sample.host !== 'string' || sample.host.trim() === '') return fail('invalid_sample', 'host: expected a non-empty string')
    host = sample.host.trim()
  }
  if (typeof sample.time !== 'string') return fail('invalid_sample', 'time: expected an ISO-8601 timestamp string')
  const time = normaliseTime(sample.time)
  if (!time) return fail('invalid_sample', `time: ${JSON.stringify(sample.time)} is not an ISO-8601 timestamp`)
  const values = {} as SampleRow['values']
  for (const column of SAMPLE_COLUMNS) {
    const value = columnValue(column, sample[column])
    if (value instanceof Refusal) return fail('invalid_sample', `${column}: ${value.reason}`)
    values[column] = value
  }
  return { ok: true, row: { host, time, values } }
}

function decodeCsv(text: string, keyHost: string | undefined): DecodeResult {
  const fields = text.split(',').map((f) => f.trim())
  if (fields.length !== SAMPLE_COLUMNS.length + 1) {
    return fail('invalid_csv', `expected ${SAMPLE_COLUMNS.length + 1} comma-separated fields (time and ${SAMPLE_COLUMNS.join(', ')}), got ${fields.length}`)
  }
  const time = normaliseTime(fields[0]!)
  if (!time) return fail('invalid_csv', `time: ${JSON.stringify(fields[0])} is not a timestamp`)
  const values = {} as SampleRow['values']
  for (const [i, column] of SAMPLE_COLUMNS.entries()) {
    const field = fields[i + 1]!
    const number = field === '' || /^(null|none|nan)$/i.test(field) ? null : /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(field) ? Number(field) : field
    const value = columnValue(column, number)
    if (value instanceof Refusal) return fail('invalid_csv', `${column}: ${value.reason}`)
    values[column] = value
  }
  return { ok: true, row: { host: keyHost ?? 'unknown', time, values } }
}

class Refusal {
  constructor(readonly reason: string) {}
}

/** null/absent → NULL; percentages 0–100; counts 0 to 10^18, rounded to whole numbers. Text, exact. */
function columnValue(column: SampleColumn, raw: unknown): string | null | Refusal {
  if (raw === undefined || raw === null) return null
  if (typeof raw !== 'number' || !Number.isFinite(raw)) return new Refusal(`expected a number or null, got ${JSON.stringify(raw)}`)
  if (PERCENT_COLUMNS.has(column)) {
    if (raw < 0 || raw > 100) return new Refusal(`${raw} is not a percentage (0–100)`)
    return String(Math.round(raw * 100) / 100)
  }
  if (raw < 0 || raw >= MAX_COUNT) return new Refusal(`${raw} is out of range (0 to 10^18)`)
  // below 10^21 String() never uses an exponent
  return String(Math.round(raw))
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i

/**
 * An ISO-8601 timestamp → ISO-8601 UTC with microseconds (what timestamptz keeps). Without a
 * zone it is local time of the sink's machine, as the original pipeline's naive timestamps were.
 */
export function normaliseTime(text: string): string | undefined {
  // fast path: what the collector writes (toISOString); the round trip refuses 31 February
  if (text.length === 24 && text.charCodeAt(23) === 90 /* Z */) {
    const ms = Date.parse(text)
    if (!Number.isNaN(ms) && ms >= 0 && new Date(ms).toISOString() === text) return `${text.slice(0, 23)}000Z`
  }
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
