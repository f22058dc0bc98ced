import { describe, expect, it } from 'vitest'
import { transformLogin } from '../core/transform-login.ts'
import { errorRecord } from '../core/error-record.ts'
import { LOGIN_RULES, loginEvent, NOW, NOW_S } from '../logins.fixture.ts'
import { activityOf, aggregateActivity, dimension, MAX_DIMENSION_LENGTH, UNREADABLE_OUTCOME, type ActivityRecord, type OutputTopic } from './login-activity.ts'

/** the Kafka timestamp of the records below: 2023-09-12T00:47:30.250Z, minute 00:47 */
const RECORD_TS = BigInt(NOW + 90_250)
const RECORD_MINUTE = Date.parse('2023-09-12T00:47:00Z')

const EVENT_MINUTE = Date.parse('2023-09-12T00:45:00Z')

/** What the processor writes for `input`: the topic and the record value, made by the processor's own functions. */
function processorOutput(input: unknown): { topic: OutputTopic; value: Buffer } {
  const raw = Buffer.isBuffer(input) ? input : Buffer.from(typeof input === 'string' ? input : JSON.stringify(input))
  const outcome = transformLogin(raw, NOW, LOGIN_RULES)
  if (outcome.kind === 'processed') return { topic: 'processed', value: Buffer.from(outcome.value) }
  if (outcome.kind === 'filtered') return { topic: 'cleaned', value: Buffer.from(outcome.value) }
  return { topic: 'errors', value: Buffer.from(errorRecord(outcome, raw, { topic: 'user-login', partition: 0, offset: 7n }, new Date(NOW).toISOString())) }
}

const activity = (topic: OutputTopic, value: Buffer | string | undefined, timestamp = RECORD_TS, now = NOW) =>
  activityOf(topic, { value: typeof value === 'string' ? Buffer.from(value) : value, timestamp }, now)

describe('records the processor writes', () => {
  it.each<[string, unknown, { minute: number; outcome: string; deviceType: string; locale: string; appVersion: string }]>([
    ['a processed event: its login time, its dimensions', loginEvent(),
      { minute: EVENT_MINUTE, outcome: 'processed', deviceType: 'android', locale: 'RU', appVersion: '2.3.0' }],
    ['unicode dimensions pass through', loginEvent({ locale: '日本', device_type: 'iOS 🍎' }),
      { minute: EVENT_MINUTE, outcome: 'processed', deviceType: 'iOS 🍎', locale: '日本', appVersion: '2.3.0' }],
    ['a stale event: filtered:stale, at its own (old) minute', loginEvent({ timestamp: String(NOW_S - 7200) }),
      { minute: Date.parse('2023-09-11T22:46:00Z'), outcome: 'filtered:stale', deviceType: 'android', locale: 'RU', appVersion: '2.3.0' }],
    ['an unsupported version: filtered:app_version', loginEvent({ app_version: '3.0.0-beta', device_type: 'iOS', locale: 'US' }),
      { minute: EVENT_MINUTE, outcome: 'filtered:app_version', deviceType: 'iOS', locale: 'US', appVersion: '3.0.0-beta' }],
    ['not JSON: error:invalid_json, at the record\'s minute, nothing known', '{"user_id":"u1","app_ver',
      { minute: RECORD_MINUTE, outcome: 'error:invalid_json', deviceType: '', locale: '', appVersion: '' }],
    ['not UTF-8 (raw payload in base64): error:invalid_json', Buffer.from([0x7b, 0xff, 0x7d]),
      { minute: RECORD_MINUTE, outcome: 'error:invalid_json', deviceType: '', locale: '', appVersion: '' }],
    ['JSON with one byte that is not UTF-8: error:invalid_json, and its dimensions are not read', (() => {
      const bytes = Buffer.from(JSON.stringify(loginEvent()))
      bytes[bytes.indexOf('2.3.0') + 1] = 0xff
      return bytes
    })(),
    { minute: RECORD_MINUTE, outcome: 'error:invalid_json', deviceType: '', locale: '', appVersion: '' }],
    ['JSON but an array: error:invalid_json', '[1,2]',
      { minute: RECORD_MINUTE, outcome: 'error:invalid_json', deviceType: '', locale: '', appVersion: '' }],
    ['a missing locale: error:missing_fields, the other dimensions and the event time from the raw payload', loginEvent({ locale: null }),
      { minute: EVENT_MINUTE, outcome: 'error:missing_fields', deviceType: 'android', locale: '', appVersion: '2.3.0' }],
    ['a blank device type counts as unknown', loginEvent({ device_type: '  ' }),
      { minute: EVENT_MINUTE, outcome: 'error:missing_fields', deviceType: '', locale: 'RU', appVersion: '2.3.0' }],
    ['a missing timestamp: the record\'s minute', loginEvent({ timestamp: undefined }),
      { minute: RECORD_MINUTE, outcome: 'error:missing_fields', deviceType: 'android', locale: 'RU', appVersion: '2.3.0' }],
    ['an invalid ip: error:invalid_field, the event time is still good', loginEvent({ ip: '999.1.2.3' }),
      { minute: EVENT_MINUTE, outcome: 'error:invalid_field', deviceType: 'android', locale: 'RU', appVersion: '2.3.0' }],
    ['a device type of the wrong type is unknown', loginEvent({ device_type: { name: 'android' } }),
      { minute: EVENT_MINUTE, outcome: 'error:invalid_field', deviceType: '', locale: 'RU', appVersion: '2.3.0' }],
    ['a timestamp in milliseconds is no event time: the record\'s minute', loginEvent({ timestamp: String(NOW) }),
      { minute: RECORD_MINUTE, outcome: 'error:invalid_field', deviceType: 'android', locale: 'RU', appVersion: '2.3.0' }],
    ['an ISO timestamp is no event time: the record\'s minute', loginEvent({ timestamp: '2023-09-12T00:45:51Z' }),
      { minute: RECORD_MINUTE, outcome: 'error:invalid_field', deviceType: 'android', locale: 'RU', appVersion: '2.3.0' }],
  ])('%s', (_why, input, expected) => {
    const { topic, value } = processorOutput(input)
    expect(activity(topic, value)).toEqual(expected)
  })

  it('an error record whose raw payload was omitted (too large) counts at the record\'s minute', () => {
    const value = JSON.stringify({ error_type: 'invalid_json', error: 'x', fields: [], user_id: null, source: {}, raw: null, raw_encoding: 'omitted', raw_bytes: 2_000_000 })
    expect(activity('errors', value)).toEqual({ minute: RECORD_MINUTE, outcome: 'error:invalid_json', deviceType: '', locale: '', appVersion: '' })
  })
})

describe('records it cannot read still count, as error:unreadable at the record\'s minute', () => {
  const unreadable = { minute: RECORD_MINUTE, outcome: UNREADABLE_OUTCOME, deviceType: '', locale: '', appVersion: '' }
  it.each<[string, OutputTopic, string | Buffer | undefined]>([
    ['no value (a tombstone)', 'processed', undefined],
    ['an empty value', 'processed', ''],
    ['not JSON', 'processed', 'hello'],
    ['JSON but not an object', 'processed', '"processed"'],
    ['JSON null', 'cleaned', 'null'],
    ['a cleaned-data record without a reason', 'cleaned', JSON.stringify({ event: loginEvent() })],
    ['a cleaned-data record with a blank reason', 'cleaned', JSON.stringify({ reason: ' ', event: loginEvent() })],
    ['an error record without an error type', 'errors', JSON.stringify({ error: 'x', raw: '{}' })],
    ['an error record whose error type is not text', 'errors', JSON.stringify({ error_type: 42 })],
    ['not UTF-8', 'errors', Buffer.from([0xff, 0xfe, 0x00])],
  ])('%s (%s)', (_why, topic, value) => {
    expect(activity(topic, value)).toEqual(unreadable)
  })
})

describe('what it makes of records written by other producers', () => {
  it.each<[string, OutputTopic, unknown, { minute: number; outcome: string; deviceType?: string; locale?: string; appVersion?: string }]>([
    ['a processed event without any time: the record\'s minute', 'processed', { device_type: 'android' }, { minute: RECORD_MINUTE, outcome: 'processed', deviceType: 'android' }],
    ['login_time when the timestamp is missing', 'processed', { login_time: '2023-09-12T00:45:51.000Z' }, { minute: EVENT_MINUTE, outcome: 'processed' }],
    ['a timestamp as digits', 'processed', { timestamp: '1694479551' }, { minute: EVENT_MINUTE, outcome: 'processed' }],
    ['a timestamp beyond year 9999 is no time', 'processed', { timestamp: 253_402_300_800 }, { minute: RECORD_MINUTE, outcome: 'processed' }],
    ['a negative timestamp is no time', 'processed', { timestamp: -60 }, { minute: RECORD_MINUTE, outcome: 'processed' }],
    ['a fractional timestamp is no time', 'processed', { timestamp: 1694479551.5 }, { minute: RECORD_MINUTE, outcome: 'processed' }],
    ['a login_time that is no date', 'processed', { login_time: 'yesterday' }, { minute: RECORD_MINUTE, outcome: 'processed' }],
    ['the epoch itself is a time', 'processed', { timestamp: 0 }, { minute: 0, outcome: 'processed' }],
    ['a cleaned-data record without an event', 'cleaned', { reason: 'stale' }, { minute: RECORD_MINUTE, outcome: 'filtered:stale' }],
    ['a cleaned-data record with a reason of its own', 'cleaned', { reason: 'geo_block', event: loginEvent() }, { minute: EVENT_MINUTE, outcome: 'filtered:geo_block', deviceType: 'android', locale: 'RU', appVersion: '2.3.0' }],
    ['an error record without a raw payload', 'errors', { error_type: 'timeout' }, { minute: RECORD_MINUTE, outcome: 'error:timeout' }],
    ['an error record with a raw payload and no encoding', 'errors', { error_type: 'x', raw: JSON.stringify(loginEvent()) }, { minute: EVENT_MINUTE, outcome: 'error:x', deviceType: 'android', locale: 'RU', appVersion: '2.3.0' }],
    ['an error record with an unknown encoding', 'errors', { error_type: 'x', raw: JSON.stringify(loginEvent()), raw_encoding: 'rot13' }, { minute: RECORD_MINUTE, outcome: 'error:x' }],
    ['an error record naming the timestamp as invalid', 'errors', { error_type: 'invalid_field', fields: ['timestamp'], raw: JSON.stringify(loginEvent()) }, { minute: RECORD_MINUTE, outcome: 'error:invalid_field', deviceType: 'android', locale: 'RU', appVersion: '2.3.0' }],
  ])('%s', (_why, topic, value, expected) => {
    expect(activity(topic, JSON.stringify(value))).toEqual({ deviceType: '', locale: '', appVersion: '', ...expected })
  })

  it('a record without a Kafka timestamp (-1) and no event time counts at the given now\'s minute', () => {
    expect(activity('processed', 'not json', -1n, Date.parse('2026-01-02T03:04:59.999Z')).minute).toBe(Date.parse('2026-01-02T03:04:00Z'))
  })

  it('a record\'s minute is its timestamp truncated, not rounded', () => {
    expect(activity('processed', '{}', BigInt(Date.parse('2026-01-02T03:04:59.999Z'))).minute).toBe(Date.parse('2026-01-02T03:04:00Z'))
    expect(activity('processed', '{}', BigInt(Date.parse('2026-01-02T03:05:00.000Z'))).minute).toBe(Date.parse('2026-01-02T03:05:00Z'))
  })
})

describe('dimension', () => {
  it.each<[string, unknown, string]>([
    ['a string as it is, spaces kept', ' RU ', ' RU '],
    ['absent', undefined, ''],
    ['null', null, ''],
    ['blank', ' \t', ''],
    ['a number', 42, ''],
    ['an object', { a: 1 }, ''],
    ['NUL replaced (PostgreSQL text cannot hold it)', 'a\u0000b', 'a\uFFFDb'],
    ['exactly the limit', 'x'.repeat(MAX_DIMENSION_LENGTH), 'x'.repeat(MAX_DIMENSION_LENGTH)],
    ['over the limit: cut, with an ellipsis', 'x'.repeat(MAX_DIMENSION_LENGTH + 1), `${'x'.repeat(MAX_DIMENSION_LENGTH)}…`],
    ['never cut inside a surrogate pair', `${'x'.repeat(MAX_DIMENSION_LENGTH - 1)}🍎🍎`, `${'x'.repeat(MAX_DIMENSION_LENGTH - 1)}…`],
  ])('%s', (_why, value, expected) => {
    expect(dimension(value)).toBe(expected)
  })

  it('a megabyte locale becomes a short one, and so does an outcome detail', () => {
    const huge = 'L'.repeat(1_000_000)
    const processed = activity('processed', JSON.stringify({ locale: huge, timestamp: NOW_S }))
    expect(processed.locale.length).toBe(MAX_DIMENSION_LENGTH + 1)
    const error = activity('errors', JSON.stringify({ error_type: huge }))
    expect(error.outcome).toBe(`error:${'L'.repeat(MAX_DIMENSION_LENGTH)}…`)
  })
})

describe('aggregateActivity', () => {
  const topics: Record<string, OutputTopic> = { 'processed-output': 'processed', 'cleaned-data': 'cleaned', 'processed-errors': 'errors' }
  const topicOf = (name: string) => topics[name]
  const record = (topic: string, value: unknown, timestamp = RECORD_TS): ActivityRecord => ({ topic, value: Buffer.from(JSON.stringify(value)), timestamp })
  const processed = (overrides: Record<string, unknown>) => record('processed-output', { ...loginEvent(overrides), timestamp: Number(overrides.timestamp ?? 1694479551) })

  it('one row per key with its count; the sum of logins is the number of records', () => {
    const batch = [
      processed({}), processed({}), processed({ locale: 'US' }),
      processed({ timestamp: 1694479551 + 60 }), // next minute
      record('cleaned-data', { reason: 'stale', event: loginEvent() }),
      record('processed-errors', { error_type: 'invalid_json', raw: '{' }),
      record('processed-errors', { error_type: 'invalid_json', raw: '[' }),
      { topic: 'processed-output', value: undefined, timestamp: RECORD_TS },
    ]
    const rows = aggregateActivity(batch, topicOf, NOW)
    expect(rows).toEqual([
      { minute: EVENT_MINUTE, outcome: 'filtered:stale', deviceType: 'android', locale: 'RU', appVersion: '2.3.0', logins: 1 },
      { minute: EVENT_MINUTE, outcome: 'processed', deviceType: 'android', locale: 'RU', appVersion: '2.3.0', logins: 2 },
      { minute: EVENT_MINUTE, outcome: 'processed', deviceType: 'android', locale: 'US', appVersion: '2.3.0', logins: 1 },
      { minute: EVENT_MINUTE + 60_000, outcome: 'processed', deviceType: 'android', locale: 'RU', appVersion: '2.3.0', logins: 1 },
      { minute: RECORD_MINUTE, outcome: 'error:invalid_json', deviceType: '', locale: '', appVersion: '', logins: 2 },
      { minute: RECORD_MINUTE, outcome: UNREADABLE_OUTCOME, deviceType: '', locale: '', appVersion: '', logins: 1 },
    ])
    expect(rows.reduce((sum, r) => sum + r.logins, 0)).toBe(batch.length)
  })

  it('rows come in one fixed order whatever the order of the records (concurrent sinks lock rows alike)', () => {
    const batch = ['US', 'RU', 'DE', 'BR', 'IN'].flatMap((locale) => ['iOS', 'android'].map((device_type) => processed({ locale, device_type })))
    const a = aggregateActivity(batch, topicOf, NOW)
    const b = aggregateActivity([...batch].reverse(), topicOf, NOW)
    expect(b).toEqual(a)
    const keys = a.map((r) => `${r.deviceType}/${r.locale}`)
    expect(keys).toEqual([...keys].sort())
  })

  it('keys that differ only where a naive separator would be are kept apart', () => {
    const rows = aggregateActivity([processed({ locale: 'a|b', device_type: 'c' }), processed({ locale: 'b', device_type: 'c|a' })], topicOf, NOW)
    expect(rows).toHaveLength(2)
  })

  it('a record of another topic is a wiring error, not data', () => {
    expect(() => aggregateActivity([record('user-login', loginEvent())], topicOf, NOW)).toThrow(/user-login/)
  })

  it('an empty batch has no rows', () => {
    expect(aggregateActivity([], topicOf, NOW)).toEqual([])
  })
})
