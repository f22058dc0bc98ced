import fc from 'fast-check'
import { expect, test } from 'vitest'
import { fuzzParameters, fuzzTimeout, noise } from '../../../test/support/fuzz.ts'
import { REQUIRED_FIELDS, type LoginRules } from './login-event.ts'
import { maskIp } from './mask-ip.ts'
import { transformLogin } from './transform-login.ts'

const RUNS = 3000
const NOW_MS = Date.UTC(2026, 10, 24, 10, 0, 0)
const NOW_S = NOW_MS / 1000
const DAY = 86_400

type Field = (typeof REQUIRED_FIELDS)[number]
/** How a generated field was made, so the expected outcome is known without running the rules. */
type Made = 'absent' | 'blank' | 'wrong_type' | 'invalid' | 'valid'
interface Case { fields: Partial<Record<Field, unknown>>; made: Record<Field, Made>; extra: Record<string, unknown>; timestamp?: number }

const text = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim() !== '')
const blank = fc.constantFrom('', ' ', '\t', '  \n ')
const wrongType = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.array(fc.integer(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }))
const validIp = fc.oneof(fc.ipV4(), fc.ipV6())
const invalidIp = fc.oneof(text.filter((s) => maskIp(s) === undefined), fc.constantFrom('999.1.1.1', '1.2.3', '01.2.3.4', '1.2.3.4.5', 'fe80::1%eth0', ':::', 'localhost'))
/** seconds relative to now: from far past to just under a day ahead (valid), or further ahead (invalid) */
const age = fc.oneof(fc.integer({ min: 0, max: 120 }), fc.integer({ min: -DAY, max: 10 * DAY }))
const invalidTimestamp = fc.oneof(
  fc.constantFrom('1694479551.5', ' 1694479551', '-5', '0x10', '2026-11-24T10:00:00Z'),
  fc.integer({ min: DAY + 1, max: 1e6 }).map((ahead) => NOW_S + ahead),
  fc.double({ noInteger: true, noNaN: true, min: 0, max: 2e9 }),
  fc.integer({ max: -1 }),
  fc.constant(NOW_MS),
)

function fieldValue(field: Field): fc.Arbitrary<[Made, unknown]> {
  const options: fc.Arbitrary<[Made, unknown]>[] = [
    fc.constant<[Made, unknown]>(['absent', undefined]),
    fc.constantFrom<[Made, unknown]>(['absent', null]),
    blank.map((b): [Made, unknown] => ['blank', b]),
    (field === 'timestamp' ? fc.oneof(fc.boolean(), fc.array(fc.integer(), { maxLength: 2 }), fc.constant({})) : wrongType).map((v): [Made, unknown] => ['wrong_type', v]),
  ]
  if (field === 'ip') options.push(invalidIp.map((v): [Made, unknown] => ['invalid', v]), validIp.map((v): [Made, unknown] => ['valid', v]), validIp.map((v): [Made, unknown] => ['valid', v]))
  else if (field === 'timestamp') options.push(invalidTimestamp.map((v): [Made, unknown] => ['invalid', v]), fc.tuple(age, fc.boolean()).map(([a, asString]): [Made, unknown] => ['valid', asString ? String(NOW_S - a) : NOW_S - a]))
  else if (field === 'app_version') options.push(fc.constantFrom('2.3.0', '2.3.0', '2.4.0', '1.0').map((v): [Made, unknown] => ['valid', v]))
  else options.push(text.map((v): [Made, unknown] => ['valid', v]))
  // valid values most of the time, so that every outcome is reached often
  return fc.oneof({ arbitrary: options.at(-1)!, weight: 6 }, ...options.map((arbitrary) => ({ arbitrary, weight: 1 })))
}

const loginCase: fc.Arbitrary<Case> = fc
  .tuple(fc.tuple(...REQUIRED_FIELDS.map(fieldValue)), fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => !(REQUIRED_FIELDS as readonly string[]).includes(k)), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }))
  .map(([values, extra]) => {
    const c: Case = { fields: {}, made: {} as Record<Field, Made>, extra }
    REQUIRED_FIELDS.forEach((field, i) => {
      const [made, value] = values[i]!
      c.made[field] = made
      if (value !== undefined) c.fields[field] = value
      if (field === 'timestamp' && made === 'valid') c.timestamp = Number(value)
    })
    return c
  })

const rulesArbitrary = fc.record({ maxMessageAgeSeconds: fc.constantFrom(0, 60, 3600), hashKey: fc.constant('fuzz-key-0123456789abcdef0123456789') })

/** The rules of SPEC.md, in order, from how the case was made. */
function expected(c: Case, rules: LoginRules): string {
  const missing = REQUIRED_FIELDS.filter((f) => c.made[f] === 'absent' || c.made[f] === 'blank')
  if (missing.length) return `failed:missing_fields:${missing.join(',')}`
  const invalid = REQUIRED_FIELDS.filter((f) => c.made[f] === 'wrong_type' || c.made[f] === 'invalid')
  if (invalid.length) return `failed:invalid_field:${invalid.join(',')}`
  if (rules.maxMessageAgeSeconds > 0 && NOW_S - c.timestamp! > rules.maxMessageAgeSeconds) return 'filtered:stale'
  if (!rules.allowedAppVersions.has(c.fields.app_version as string)) return 'filtered:app_version'
  return 'processed'
}

test('login rules: every generated event ends in exactly the outcome the rules give, in their order', () => {
  fc.assert(
    fc.property(loginCase, rulesArbitrary, (c, r) => {
      const rules: LoginRules = { ...r, allowedAppVersions: new Set(['2.3.0']) }
      // the extra fields go first: a later required field replaces a same-named extra
      const raw = Buffer.from(JSON.stringify({ ...c.extra, ...c.fields }))
      const outcome = transformLogin(raw, NOW_MS, rules)
      const got = outcome.kind === 'failed' ? `failed:${outcome.errorType}:${outcome.fields.join(',')}` : outcome.kind === 'filtered' ? `filtered:${outcome.reason}` : 'processed'
      expect(got).toBe(expected(c, rules))
      if (outcome.kind === 'failed') return
      // processed and filtered records carry the transformed event, never the raw PII
      const event = (outcome.kind === 'processed' ? JSON.parse(outcome.value) : JSON.parse(outcome.value).event) as Record<string, unknown>
      expect(event.ip).toBe(maskIp(c.fields.ip as string))
      expect(event.device_id).toMatch(/^[0-9a-f]{64}$/)
      expect(event.timestamp).toBe(c.timestamp)
      expect(event.login_time).toBe(new Date(c.timestamp! * 1000).toISOString())
      for (const [k, v] of Object.entries(c.extra)) if (!(k in c.fields) && k !== 'login_time') expect(event[k]).toEqual(JSON.parse(JSON.stringify(v)))
    }),
    fuzzParameters(RUNS),
  )
}, fuzzTimeout(RUNS))

test('login rules: any bytes at all end in exactly one outcome, never a throw', () => {
  const rules: LoginRules = { hashKey: 'k', maxMessageAgeSeconds: 60, allowedAppVersions: new Set(['2.3.0']) }
  fc.assert(
    fc.property(fc.oneof(noise, fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')), fc.constant(undefined)), (raw) => {
      const outcome = transformLogin(raw, NOW_MS, rules)
      expect(['processed', 'filtered', 'failed']).toContain(outcome.kind)
      if (outcome.kind === 'failed') expect(['invalid_json', 'missing_fields', 'invalid_field']).toContain(outcome.errorType)
      else expect(() => JSON.parse(outcome.value)).not.toThrow()
    }),
    fuzzParameters(RUNS),
  )
}, fuzzTimeout(RUNS))
