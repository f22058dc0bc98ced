import { describe, expect, it } from 'vitest'
import { transformLogin } from './transform-login.ts'
import { errorRecord } from './error-record.ts'
import { epochSeconds } from './epoch-seconds.ts'
import { pseudonymiseDeviceId } from './pseudonymise.ts'
import type { LoginOutcome, LoginRules } from './login-event.ts'
import { HASH_KEY, LOGIN_RULES, loginEvent, NOW, NOW_S } from '../logins.fixture.ts'

const without = (field: string) => {
  const e: Record<string, unknown> = loginEvent()
  delete e[field]
  return e
}
const run = (value: unknown, r: LoginRules = LOGIN_RULES): LoginOutcome =>
  transformLogin(value === undefined ? undefined : Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), NOW, r)

describe('rule 5: a valid event is transformed', () => {
  it('masks the ip, pseudonymises the device id, keeps the timestamp as a number and adds login_time', () => {
    const outcome = run(loginEvent())
    expect(outcome.kind).toBe('processed')
    if (outcome.kind !== 'processed') return
    expect(JSON.parse(outcome.value)).toEqual({
      user_id: '424cdd21-063a-43a7-b91b-7ca1a833afae',
      app_version: '2.3.0',
      device_type: 'android',
      ip: '199.172.111.xxx',
      locale: 'RU',
      device_id: pseudonymiseDeviceId(HASH_KEY, '593-47-5928'),
      timestamp: 1694479551,
      login_time: '2023-09-12T00:45:51.000Z',
    })
    expect(outcome).toMatchObject({ userId: '424cdd21-063a-43a7-b91b-7ca1a833afae', deviceType: 'android', locale: 'RU', appVersion: '2.3.0', timestamp: 1694479551 })
    // the field order of the input is kept, login_time comes last
    expect(Object.keys(JSON.parse(outcome.value))).toEqual(['user_id', 'app_version', 'device_type', 'ip', 'locale', 'device_id', 'timestamp', 'login_time'])
    expect(outcome.value).not.toContain('593-47-5928')
    expect(outcome.value).not.toContain('111.135')
  })

  it.each([
    ['extra fields pass through unchanged', { extra: { nested: [1, 'two', null] }, n: 1.5 }],
    ['unicode passes through', { locale: '日本', device_type: 'iOS 🍎', user_id: 'üser-ß' }],
    ['a timestamp as a JSON number', { timestamp: 1694479551 }],
    ['a timestamp with leading zeros', { timestamp: '001694479551' }],
    ['an IPv6 address', { ip: '2001:db8:85a3::8a2e:370:7334' }],
    ['an IPv4-mapped IPv6 address', { ip: '::ffff:199.172.111.135' }],
    ['a timestamp a little in the future (clock skew)', { timestamp: String(NOW_S + 3600) }],
  ])('%s', (_why, overrides) => {
    const outcome = run(loginEvent(overrides))
    expect(outcome.kind).toBe('processed')
    if (outcome.kind !== 'processed') return
    const out = JSON.parse(outcome.value) as Record<string, unknown>
    for (const [k, v] of Object.entries(overrides)) if (!['ip', 'timestamp'].includes(k)) expect(out[k]).toEqual(v)
    expect(typeof out.timestamp).toBe('number')
  })

  it('keeps a "__proto__" key as plain data without touching any prototype', () => {
    const text = '{"__proto__":{"polluted":true},"user_id":"u1","app_version":"2.3.0","device_type":"android","ip":"1.2.3.4","locale":"RU","device_id":"d","timestamp":"1694479551"}'
    const outcome = run(text)
    expect(outcome.kind).toBe('processed')
    if (outcome.kind !== 'processed') return
    expect(outcome.value.startsWith('{"__proto__":{"polluted":true},')).toBe(true)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getPrototypeOf(JSON.parse(outcome.value))).toBe(Object.prototype)
  })

  it('does not take required fields from a "__proto__" key', () => {
    const outcome = run('{"__proto__":{"user_id":"u1","ip":"1.2.3.4"},"app_version":"2.3.0","device_type":"android","locale":"RU","device_id":"d","timestamp":"1694479551"}')
    expect(outcome).toMatchObject({ kind: 'failed', errorType: 'missing_fields', fields: ['user_id', 'ip'] })
  })

  it('handles a 1 MB event', () => {
    const big = 'x'.repeat(1024 * 1024)
    const outcome = run(loginEvent({ note: big }))
    expect(outcome.kind).toBe('processed')
    if (outcome.kind === 'processed') expect((JSON.parse(outcome.value) as { note: string }).note).toBe(big)
  })
})

describe('rule 1: not UTF-8 JSON, or not a JSON object → invalid_json', () => {
  it.each([
    ['no value (tombstone)', undefined],
    ['empty value', ''],
    ['bytes that are not UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
    ['a lone UTF-8 continuation byte', Buffer.concat([Buffer.from(JSON.stringify(loginEvent())).subarray(0, 20), Buffer.from([0x80])])],
    ['an overlong UTF-8 encoding', Buffer.from([0x7b, 0xc0, 0xaf, 0x7d])],
    ['truncated JSON', JSON.stringify(loginEvent()).slice(0, 40)],
    ['not JSON at all', 'user_id=1,ip=1.2.3.4'],
    ['a JSON array', JSON.stringify([loginEvent()])],
    ['a JSON number', '42'],
    ['a JSON string', '"hello"'],
    ['JSON null', 'null'],
    ['JSON true', 'true'],
    ['a 1 MB payload that is not JSON', `{"a":"${'y'.repeat(1024 * 1024)}`],
  ])('%s', (_why, value) => {
    expect(run(value)).toMatchObject({ kind: 'failed', errorType: 'invalid_json', fields: [], userId: null })
  })
})

describe('rule 2: missing fields and invalid fields', () => {
  it.each([
    ['user_id absent', without('user_id'), ['user_id']],
    ['ip absent', without('ip'), ['ip']],
    ['device_id absent', without('device_id'), ['device_id']],
    ['app_version absent', without('app_version'), ['app_version']],
    ['device_type absent', without('device_type'), ['device_type']],
    ['timestamp absent', without('timestamp'), ['timestamp']],
    ['locale absent', without('locale'), ['locale']],
    ['null ip', loginEvent({ ip: null }), ['ip']],
    ['empty locale', loginEvent({ locale: '' }), ['locale']],
    ['blank device_type', loginEvent({ device_type: '  ' }), ['device_type']],
    ['empty timestamp', loginEvent({ timestamp: '' }), ['timestamp']],
    ['several at once, named in order', loginEvent({ locale: null, ip: '', timestamp: null }), ['ip', 'timestamp', 'locale']],
    ['an empty object', {}, ['user_id', 'ip', 'device_id', 'app_version', 'device_type', 'timestamp', 'locale']],
  ])('missing_fields: %s', (_why, value, fields) => {
    const outcome = run(value)
    expect(outcome).toMatchObject({ kind: 'failed', errorType: 'missing_fields', fields })
    if (outcome.kind === 'failed') expect(outcome.error).toContain(fields.join(', '))
  })

  it('missing fields win over invalid ones (rule order)', () => {
    expect(run(loginEvent({ ip: 'nope', locale: null }))).toMatchObject({ errorType: 'missing_fields', fields: ['locale'] })
  })

  it.each([
    ['timestamp as a float', { timestamp: 1694479551.5 }, ['timestamp']],
    ['timestamp as a float string', { timestamp: '1694479551.5' }, ['timestamp']],
    ['timestamp negative', { timestamp: -1694479551 }, ['timestamp']],
    ['timestamp negative string', { timestamp: '-1694479551' }, ['timestamp']],
    ['timestamp in hex', { timestamp: '0x64ff7d5f' }, ['timestamp']],
    ['timestamp as ISO text', { timestamp: '2023-09-12T00:45:51Z' }, ['timestamp']],
    ['timestamp with spaces', { timestamp: ' 1694479551' }, ['timestamp']],
    ['timestamp in exponent notation text', { timestamp: '1.694479551e9' }, ['timestamp']],
    ['timestamp far in the future (milliseconds)', { timestamp: 1694479551000 }, ['timestamp']],
    ['timestamp far in the future (year 9999)', { timestamp: '253402300799' }, ['timestamp']],
    ['timestamp beyond safe integers', { timestamp: '99999999999999999999' }, ['timestamp']],
    ['timestamp as a boolean', { timestamp: true }, ['timestamp']],
    ['timestamp as an object', { timestamp: { seconds: 1694479551 } }, ['timestamp']],
    ['ip with five octets', { ip: '1.2.3.4.5' }, ['ip']],
    ['ip with leading zeros', { ip: '01.02.03.04' }, ['ip']],
    ['ip out of range', { ip: '256.1.1.1' }, ['ip']],
    ['ip as a number', { ip: 3232235777 }, ['ip']],
    ['user_id as a number', { user_id: 42 }, ['user_id']],
    ['device_id as an object', { device_id: { id: '593-47-5928' } }, ['device_id']],
    ['device_type as an array', { device_type: ['android'] }, ['device_type']],
    ['locale as a boolean', { locale: false }, ['locale']],
    ['app_version as a number', { app_version: 2.3 }, ['app_version']],
    ['several, named in order', { user_id: 1, ip: 'x', timestamp: 'x' }, ['user_id', 'ip', 'timestamp']],
  ])('invalid_field: %s', (_why, overrides, fields) => {
    const outcome = run(loginEvent(overrides))
    expect(outcome).toMatchObject({ kind: 'failed', errorType: 'invalid_field', fields })
  })

  it('knows the user id of a failed event when it has one', () => {
    expect(run(loginEvent({ ip: 'x' }))).toMatchObject({ userId: '424cdd21-063a-43a7-b91b-7ca1a833afae' })
    expect(run(loginEvent({ user_id: 42 }))).toMatchObject({ userId: null })
  })
})

describe('rules 3 and 4: stale and unsupported events go to cleaned-data, transformed', () => {
  it('stale: older than MAX_MESSAGE_AGE', () => {
    const outcome = run(loginEvent({ timestamp: String(NOW_S - 61) }))
    expect(outcome).toMatchObject({ kind: 'filtered', reason: 'stale' })
    if (outcome.kind !== 'filtered') return
    const record = JSON.parse(outcome.value) as { reason: string; event: Record<string, unknown>; detail: string }
    expect(record.reason).toBe('stale')
    expect(record.detail).toMatch(/61 s old; MAX_MESSAGE_AGE is 60 s/)
    expect(record.event.ip).toBe('199.172.111.xxx')
    expect(record.event.device_id).toBe(pseudonymiseDeviceId(HASH_KEY, '593-47-5928'))
    expect(outcome.value).not.toContain('593-47-5928')
  })

  it('exactly MAX_MESSAGE_AGE old is not stale', () => {
    expect(run(loginEvent({ timestamp: String(NOW_S - 60) })).kind).toBe('processed')
  })

  it('epoch 0 is valid epoch seconds, and stale', () => {
    expect(run(loginEvent({ timestamp: 0 }))).toMatchObject({ kind: 'filtered', reason: 'stale' })
  })

  it('MAX_MESSAGE_AGE=0 turns the check off', () => {
    expect(run(loginEvent({ timestamp: '1000' }), { ...LOGIN_RULES, maxMessageAgeSeconds: 0 }).kind).toBe('processed')
  })

  it('app_version not allowed', () => {
    const outcome = run(loginEvent({ app_version: '2.2.0' }))
    expect(outcome).toMatchObject({ kind: 'filtered', reason: 'app_version', appVersion: '2.2.0' })
    if (outcome.kind === 'filtered') expect(JSON.parse(outcome.value)).toMatchObject({ reason: 'app_version', event: { app_version: '2.2.0', ip: '199.172.111.xxx' } })
  })

  it('stale is checked before the app version (rule order)', () => {
    expect(run(loginEvent({ app_version: '1.0.0', timestamp: '1000' }))).toMatchObject({ reason: 'stale' })
  })

  it('ALLOWED_APP_VERSIONS may list several', () => {
    expect(run(loginEvent({ app_version: '2.4.0' }), { ...LOGIN_RULES, allowedAppVersions: new Set(['2.3.0', '2.4.0']) }).kind).toBe('processed')
  })
})

describe('epochSeconds', () => {
  it.each([
    ['1694479551', 1694479551], [1694479551, 1694479551], ['0', 0], [0, 0], ['007', 7],
    [1.5, undefined], [-1, undefined], ['-1', undefined], ['1e9', undefined], ['0x10', undefined], ['', undefined],
    ['1 ', undefined], [Number.NaN, undefined], [Infinity, undefined], [2 ** 53, undefined], [null, undefined], ['１２', undefined],
  ])('%j → %j', (value, expected) => {
    expect(epochSeconds(value)).toBe(expected)
  })
})

describe('errorRecord', () => {
  const source = { topic: 'user-login', partition: 2, offset: 12345n }
  it('carries the raw payload as text when it is UTF-8', () => {
    const raw = Buffer.from('{"user_id":"u1","ip":"x"}')
    const outcome = run(raw)
    if (outcome.kind !== 'failed') throw new Error('expected a failure')
    const record = JSON.parse(errorRecord(outcome, raw, source, '2026-01-01T00:00:00.000Z')) as Record<string, unknown>
    expect(record).toEqual({
      error_type: 'missing_fields',
      error: outcome.error,
      fields: ['device_id', 'app_version', 'device_type', 'timestamp', 'locale'],
      user_id: 'u1',
      source: { topic: 'user-login', partition: 2, offset: 12345 },
      raw: '{"user_id":"u1","ip":"x"}',
      raw_encoding: 'utf8',
      time: '2026-01-01T00:00:00.000Z',
    })
  })

  it('carries the raw payload as base64 when it is not UTF-8, so that it can be replayed byte for byte', () => {
    const raw = Buffer.from([0x7b, 0xff, 0x00, 0x7d])
    const outcome = run(raw)
    if (outcome.kind !== 'failed') throw new Error('expected a failure')
    const record = JSON.parse(errorRecord(outcome, raw, source, 'now')) as { raw: string; raw_encoding: string; user_id: null }
    expect(record.raw_encoding).toBe('base64')
    expect(Buffer.from(record.raw, 'base64')).toEqual(raw)
    expect(record.user_id).toBeNull()
  })

  it('escapes unicode and quotes in the raw text', () => {
    const raw = Buffer.from('{"user_id":"ü\\"ß 🍎","ip":null}')
    const outcome = run(raw)
    if (outcome.kind !== 'failed') throw new Error('expected a failure')
    const record = JSON.parse(errorRecord(outcome, raw, source, 'now')) as { raw: string; user_id: string }
    expect(record.raw).toBe(raw.toString('utf8'))
    expect(record.user_id).toBe('ü"ß 🍎')
  })

  it('has no raw text for a record without a value', () => {
    const outcome = run(undefined)
    if (outcome.kind !== 'failed') throw new Error('expected a failure')
    expect(JSON.parse(errorRecord(outcome, undefined, source, 'now'))).toMatchObject({ raw: '', raw_encoding: 'utf8', error_type: 'invalid_json' })
  })
})
