import { isUtf8 } from 'node:buffer'
import { epochSeconds } from '../core/epoch-seconds.ts'

/**
 * Login activity per minute (SPEC.md "Login activity in PostgreSQL"): every record of the
 * processor's three outputs is one login, counted under (minute, outcome, device type, locale,
 * app version). Pure: records in, rows out; the sink shell does the Kafka and the database.
 */

/** Which of the processor's outputs a record comes from. */
export type OutputTopic = 'processed' | 'cleaned' | 'errors'

/** What the aggregation reads of a consumed record (a ConsumedRecord has all of it). */
export interface ActivityRecord {
  topic: string
  value: Buffer | undefined
  /** the Kafka record timestamp, epoch milliseconds */
  timestamp: bigint
}

/** One row of `login_activity`; `minute` is epoch milliseconds, a multiple of 60,000. */
export interface ActivityRow {
  minute: number
  outcome: string
  deviceType: string
  locale: string
  appVersion: string
  logins: number
}

/**
 * The outcome of a record that is not in its topic's format (not a JSON object; a cleaned-data
 * record without a reason; an error record without an error type). It still counts: every record
 * of the three topics is one login, so SUM(logins) stays equal to the inputs.
 */
export const UNREADABLE_OUTCOME = 'error:unreadable'

/**
 * Longest dimension or outcome detail kept, in characters; longer ones are cut and end in "…".
 * The processor accepts any non-blank string as a locale; a megabyte of one must not make
 * PostgreSQL refuse the batch (a primary-key entry is limited to about 2.7 kB).
 */
export const MAX_DIMENSION_LENGTH = 100

/** 9999-12-31T23:59:59Z: the last second both PostgreSQL's input and `Date#toISOString` agree on. */
const MAX_EVENT_SECONDS = 253_402_300_799
const MINUTE_MS = 60_000

interface ActivityKey {
  minute: number
  outcome: string
  deviceType: string
  locale: string
  appVersion: string
}

/**
 * The activity of one record. `nowMs` stands in for a record without a usable Kafka timestamp
 * (-1 from a producer that set none), where there is no event time either.
 */
export function activityOf(topic: OutputTopic, record: Pick<ActivityRecord, 'value' | 'timestamp'>, nowMs: number): ActivityKey {
  const recordMinute = minuteOfMs(record.timestamp >= 0n ? Number(record.timestamp) : nowMs)
  const value = parseObject(record.value)
  if (value === undefined) return unreadable(recordMinute)
  if (topic === 'processed') return eventActivity('processed', value, recordMinute)
  if (topic === 'cleaned') {
    const reason = dimension(value.reason)
    if (reason === '') return unreadable(recordMinute)
    const event = value.event
    return eventActivity(`filtered:${reason}`, isObject(event) ? event : {}, recordMinute)
  }
  const errorType = dimension(value.error_type)
  if (errorType === '') return unreadable(recordMinute)
  return errorActivity(`error:${errorType}`, value, recordMinute)
}

/** A processed or filtered event: it was valid, so it has its time and its dimensions. */
function eventActivity(outcome: string, event: Record<string, unknown>, recordMinute: number): ActivityKey {
  const seconds = eventSeconds(event.timestamp) ?? isoSeconds(event.login_time)
  return {
    minute: seconds === undefined ? recordMinute : minuteOfMs(seconds * 1000),
    outcome,
    deviceType: dimension(event.device_type),
    locale: dimension(event.locale),
    appVersion: dimension(event.app_version),
  }
}

/**
 * An error record knows what its raw payload says: when that is a JSON object, its string
 * dimensions and its timestamp (unless the error names the timestamp as the invalid field) are
 * used; the rest is '' and the minute is the record's own.
 */
function errorActivity(outcome: string, record: Record<string, unknown>, recordMinute: number): ActivityKey {
  const event = parseObject(rawPayload(record))
  if (event === undefined) return { minute: recordMinute, outcome, deviceType: '', locale: '', appVersion: '' }
  const timestampInvalid = Array.isArray(record.fields) && record.fields.includes('timestamp')
  const seconds = timestampInvalid ? undefined : eventSeconds(event.timestamp)
  return {
    minute: seconds === undefined ? recordMinute : minuteOfMs(seconds * 1000),
    outcome,
    deviceType: dimension(event.device_type),
    locale: dimension(event.locale),
    appVersion: dimension(event.app_version),
  }
}

function rawPayload(record: Record<string, unknown>): Buffer | undefined {
  const raw = record.raw
  if (typeof raw !== 'string' || raw.length === 0) return undefined
  if (record.raw_encoding === 'base64') return Buffer.from(raw, 'base64')
  return record.raw_encoding === undefined || record.raw_encoding === 'utf8' ? Buffer.from(raw, 'utf8') : undefined
}

function unreadable(minute: number): ActivityKey {
  return { minute, outcome: UNREADABLE_OUTCOME, deviceType: '', locale: '', appVersion: '' }
}

function parseObject(value: Buffer | undefined): Record<string, unknown> | undefined {
  // no more lenient than the processor: bytes that are not UTF-8 are not read (their decoding would invent U+FFFD)
  if (value === undefined || value.length === 0 || !isUtf8(value)) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(value.toString('utf8'))
  } catch {
    return undefined
  }
  return isObject(parsed) ? parsed : undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function eventSeconds(value: unknown): number | undefined {
  const seconds = epochSeconds(value)
  return seconds !== undefined && seconds <= MAX_EVENT_SECONDS ? seconds : undefined
}

function isoSeconds(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined
  const ms = Date.parse(value)
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_EVENT_SECONDS * 1000 ? Math.floor(ms / 1000) : undefined
}

function minuteOfMs(ms: number): number {
  return ms - (((ms % MINUTE_MS) + MINUTE_MS) % MINUTE_MS)
}

/**
 * A dimension as stored: the string, or '' when absent, blank or not a string (never NULL: it is
 * part of the primary key). NUL becomes U+FFFD (PostgreSQL text cannot hold it); over
 * MAX_DIMENSION_LENGTH characters it is cut (never inside a surrogate pair) and ends in "…".
 */
export function dimension(value: unknown): string {
  if (typeof value !== 'string' || value.trim().length === 0) return ''
  let text = value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value
  if (text.length > MAX_DIMENSION_LENGTH) {
    let end = MAX_DIMENSION_LENGTH
    const last = text.charCodeAt(end - 1)
    if (last >= 0xd800 && last <= 0xdbff) end--
    text = `${text.slice(0, end)}…`
  }
  return text
}

/**
 * The rows of a batch: one per distinct (minute, outcome, device type, locale, app version),
 * in a fixed order (sorted by key) so that concurrent sinks lock rows in the same order and do
 * not deadlock. `topicOf` names the output a record's topic is.
 */
export class ActivityCounts {
  readonly #rows = new Map<string, ActivityRow>()
  records = 0

  add(topic: OutputTopic, record: Pick<ActivityRecord, 'value' | 'timestamp'>, nowMs: number): void {
    const key = activityOf(topic, record, nowMs)
    // dimensions never hold NUL (see dimension()), so the joined key is unambiguous
    const id = `${key.minute}\u0000${key.outcome}\u0000${key.deviceType}\u0000${key.locale}\u0000${key.appVersion}`
    const row = this.#rows.get(id)
    if (row !== undefined) row.logins++
    else this.#rows.set(id, { ...key, logins: 1 })
    this.records++
  }

  get size(): number {
    return this.#rows.size
  }

  rows(): ActivityRow[] {
    return [...this.#rows.values()].sort(compareRows)
  }
}

/** Aggregates a batch; throws on a record of a topic `topicOf` does not know (a wiring error, not data). */
export function aggregateActivity(batch: readonly ActivityRecord[], topicOf: (topic: string) => OutputTopic | undefined, nowMs: number): ActivityRow[] {
  const counts = new ActivityCounts()
  for (const record of batch) {
    const topic = topicOf(record.topic)
    if (topic === undefined) throw new Error(`login activity: records of topic ${JSON.stringify(record.topic)} are not login outputs`)
    counts.add(topic, record, nowMs)
  }
  return counts.rows()
}

function compareRows(a: ActivityRow, b: ActivityRow): number {
  return a.minute - b.minute || compare(a.outcome, b.outcome) || compare(a.deviceType, b.deviceType) || compare(a.locale, b.locale) || compare(a.appVersion, b.appVersion)
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
