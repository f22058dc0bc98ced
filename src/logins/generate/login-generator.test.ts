import { describe, expect, it } from 'vitest'
import { LoginGenerator } from './login-generator.ts'
import { transformLogin } from '../core/transform-login.ts'

const NOW = 1_700_000_000
const rules = { hashKey: 'k'.repeat(16), maxMessageAgeSeconds: 60, allowedAppVersions: new Set(['2.3.0']) }

describe('LoginGenerator', () => {
  it('is reproducible: the same seed gives the same events', () => {
    const a = new LoginGenerator(42, 0.3)
    const b = new LoginGenerator(42, 0.3)
    const c = new LoginGenerator(43, 0.3)
    const take = (g: LoginGenerator) => Array.from({ length: 200 }, () => g.next(NOW)).map((e) => [e.kind, e.key, e.value.toString('base64')])
    const first = take(a)
    expect(take(b)).toEqual(first)
    expect(take(c)).not.toEqual(first)
  })

  it('makes realistic valid events that the processor accepts', () => {
    const g = new LoginGenerator(1)
    const events = Array.from({ length: 2000 }, () => g.next(NOW))
    const parsed = events.map((e) => JSON.parse(e.value.toString()) as Record<string, string>)
    for (const e of parsed) {
      expect(e.user_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      expect(e.device_id).toMatch(/^\d{3}-\d{2}-\d{4}$/)
      expect(['android', 'iOS']).toContain(e.device_type)
      expect(e.timestamp).toBe(String(NOW))
    }
    const share = (f: (e: Record<string, string>) => boolean) => parsed.filter(f).length / parsed.length
    expect(share((e) => e.app_version === '2.3.0')).toBeGreaterThan(0.75)
    expect(share((e) => e.app_version !== '2.3.0')).toBeGreaterThan(0.05)
    expect(share((e) => e.ip!.includes(':'))).toBeGreaterThan(0.05)
    expect(share((e) => e.ip!.includes(':'))).toBeLessThan(0.2)
    expect(new Set(parsed.map((e) => e.locale)).size).toBeGreaterThan(10)
    const outcomes = events.map((e) => transformLogin(Buffer.from(e.value), NOW * 1000, rules))
    expect(outcomes.every((o) => o.kind !== 'failed')).toBe(true)
  })

  it('mixes in the invalid kinds at the ratio asked, each routed as expected', () => {
    const g = new LoginGenerator(7, 0.5)
    const events = Array.from({ length: 4000 }, () => g.next(NOW))
    const invalid = events.filter((e) => e.kind !== 'valid').length / events.length
    expect(invalid).toBeGreaterThan(0.45)
    expect(invalid).toBeLessThan(0.55)
    const expected = { malformed_json: 'invalid_json', not_utf8: 'invalid_json', missing_field: 'missing_fields', wrong_type: 'invalid_field' } as const
    for (const e of events) {
      const outcome = transformLogin(Buffer.isBuffer(e.value) ? e.value : Buffer.from(e.value), NOW * 1000, rules)
      if (e.kind === 'stale') expect(outcome).toMatchObject({ kind: 'filtered', reason: 'stale' })
      else if (e.kind !== 'valid') expect(outcome).toMatchObject({ kind: 'failed', errorType: expected[e.kind] })
    }
    expect(new Set(events.map((e) => e.kind)).size).toBe(6)
  })
})
