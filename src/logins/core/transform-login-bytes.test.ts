import { describe, expect, it } from 'vitest'
import { LoginGenerator } from '../generate/login-generator.ts'
import { transformLoginBytes, type FastOutcome, type Utf8Sink } from './transform-login-bytes.ts'
import { referenceTransformLogin } from './transform-login-reference.fixture.ts'
import { NOW, NOW_S, corpus, rulesList } from './login-corpus.fixture.ts'
import type { LoginRules } from './login-event.ts'

/** What transformLoginBytes writes, collected. */
class Collected implements Utf8Sink {
  parts: Buffer[] = []
  text(text: string): void {
    this.parts.push(Buffer.from(text, 'utf8'))
  }
  ascii(text: string): void {
    this.parts.push(Buffer.from(text, 'latin1'))
  }
  bytes(source: Buffer, start: number, end: number): void {
    this.parts.push(Buffer.from(source.subarray(start, end)))
  }
  get written(): Buffer {
    return Buffer.concat(this.parts)
  }
}

/** The record in the middle of other bytes, as it is in a packed run. */
function run(raw: Buffer, rules: LoginRules): { outcome: FastOutcome | undefined; value: Buffer; key: Buffer | undefined } {
  const packed = Buffer.concat([Buffer.from('{"x":"'), raw, Buffer.from('"}')])
  const out = new Collected()
  const outcome = transformLoginBytes(packed, 6, 6 + raw.length, NOW, rules, out)
  return { outcome, value: out.written, key: outcome && packed.subarray(outcome.userStart, outcome.userEnd) }
}

/** Handled: the same outcome as the reference rules, the same bytes. Not handled: nothing written. */
function expectAsReference(raw: Buffer, rules: LoginRules): boolean {
  const { outcome, value, key } = run(raw, rules)
  if (outcome === undefined) {
    expect(value.length, `nothing written for ${raw.toString()}`).toBe(0)
    return false
  }
  const reference = referenceTransformLogin(raw, NOW, rules)
  if (reference.kind === 'failed') throw new Error(`handled a record the rules fail: ${raw.toString()}`)
  expect(value.toString('utf8'), raw.toString()).toBe(reference.value)
  expect(key!.toString('utf8')).toBe(reference.userId)
  expect({ ...outcome, userStart: 0, userEnd: 0 }).toEqual({
    kind: reference.kind,
    reason: reference.kind === 'filtered' ? reference.reason : undefined,
    deviceType: reference.deviceType,
    locale: reference.locale,
    appVersion: reference.appVersion,
    timestamp: reference.timestamp,
    userStart: 0,
    userEnd: 0,
  })
  return true
}

const rules = rulesList[0]!
const event = {
  user_id: 'u-1',
  app_version: '2.3.0',
  device_type: 'android',
  ip: '140.223.199.2',
  locale: 'FR',
  device_id: '866-22-4628',
  timestamp: String(NOW_S - 5),
}
const text = JSON.stringify(event)

describe('the login rules read and written as bytes (the rules thread\'s path for the common record)', () => {
  it('give the reference outputs byte for byte on the seeded corpus, and handle most of it', () => {
    for (const [r, ruleSet] of rulesList.entries()) {
      let handled = 0
      const records = corpus(20_000, 7 + r)
      for (const raw of records) if (expectAsReference(raw, ruleSet)) handled++
      // the corpus is 65 % valid events as the generator writes them, and many odd ones beside
      expect(handled, `rule set ${r}`).toBeGreaterThan(records.length * 0.4)
    }
  })

  it('handle every valid event the generator writes', () => {
    const generator = new LoginGenerator(11)
    for (let i = 0; i < 2_000; i++) {
      const raw = Buffer.from(generator.next(NOW_S - 10).value)
      expect(expectAsReference(raw, rulesList[1]!), raw.toString()).toBe(true)
    }
  })

  it.each([
    ['spaces and line ends between every token', ` {\n "user_id" : "u-1" ,\t"app_version":"2.3.0", "device_type":"android","ip":"140.223.199.2","locale":"FR","device_id":"866-22-4628","timestamp":${NOW_S - 5} }\r\n`],
    ['login_time already there, replaced where it is', text.replace('{', '{"login_time":"then",')],
    ['other fields of every kind it keeps', text.replace('{', '{"a":true,"b":false,"c":null,"d":-12,"e":0,"f":"","__proto__":"p","constructor":"c",')],
    ['the fields in another order', JSON.stringify(Object.fromEntries(Object.entries(event).reverse()))],
    ['a numeric timestamp', text.replace(`"${NOW_S - 5}"`, String(NOW_S - 5))],
    ['a timestamp with leading zeros in a string', text.replace(`"${NOW_S - 5}"`, `"000${NOW_S - 5}"`)],
    ['a stale event', text.replace(`"${NOW_S - 5}"`, `"${NOW_S - 3600}"`)],
    ['a version not allowed', text.replace('2.3.0', '9.9')],
    ['an IPv6 address', text.replace('140.223.199.2', '2001:db8::1')],
  ])('handle %s as the rules do', (_what, raw) => {
    expect(expectAsReference(Buffer.from(raw), rules)).toBe(true)
  })

  it.each([
    ['an escape in a value', text.replace('u-1', 'u\\u002d1')],
    ['an escape in a key', text.replace('"locale"', '"loc\\u0061le"')],
    ['non-ASCII text', text.replace('FR', 'Fé')],
    ['a key JSON.stringify would write first', text.replace('{', '{"7":"x",')],
    ['a key twice', text.replace('{', '{"locale":"DE",')],
    ['a key twice, not one of the rules\' fields', text.replace('{', '{"k":1,"k":2,')],
    ['a fraction', text.replace('{', '{"n":1.5,')],
    ['an exponent', text.replace('{', '{"n":1e3,')],
    ['minus zero', text.replace('{', '{"n":-0,')],
    ['a leading zero', text.replace('{', '{"n":01,')],
    ['16 digits', text.replace('{', '{"n":1234567890123456,')],
    ['a nested object', text.replace('{', '{"n":{},')],
    ['an array', text.replace('{', '{"n":[],')],
    ['a byte-order mark', `\uFEFF${text}`],
    ['text after the object', `${text} x`],
    ['a cut record', text.slice(0, -3)],
    ['a missing field', JSON.stringify({ ...event, locale: undefined })],
    ['a blank field', JSON.stringify({ ...event, locale: ' ' })],
    ['a field of the wrong type', JSON.stringify({ ...event, locale: 5 })],
    ['a bad address', JSON.stringify({ ...event, ip: '1.2.3' })],
    ['a timestamp too far ahead', JSON.stringify({ ...event, timestamp: NOW_S + 86_401 })],
    ['a timestamp that is not digits', JSON.stringify({ ...event, timestamp: `${NOW_S}.0` })],
    ['a negative timestamp', JSON.stringify({ ...event, timestamp: -5 })],
    ['an empty object', '{}'],
    ['more members than it reads', JSON.stringify({ ...event, ...Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i])) })],
  ])('leave %s to transformLogin, writing nothing', (_what, raw) => {
    expect(expectAsReference(Buffer.from(raw), rules)).toBe(false)
  })
})
