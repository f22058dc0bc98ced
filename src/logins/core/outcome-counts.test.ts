import { describe, expect, it } from 'vitest'
import { MAX_CATEGORY_VALUES, OTHER_CATEGORY, OutcomeCounts, summaryRecord } from './outcome-counts.ts'
import { PercentileHistogram } from './percentiles.ts'
import type { LoginOutcome } from './login-event.ts'

const valid = (kind: 'processed' | 'filtered', locale = 'RU'): LoginOutcome =>
  kind === 'processed'
    ? { kind, value: '{}', userId: 'u', deviceType: 'android', locale, appVersion: '2.3.0', timestamp: 1 }
    : { kind, reason: 'stale', value: '{}', userId: 'u', deviceType: 'iOS', locale, appVersion: '2.2.0', timestamp: 1 }

describe('OutcomeCounts', () => {
  it('counts outcomes, reasons, error types and categories; merges', () => {
    const a = new OutcomeCounts()
    a.add(valid('processed'))
    a.add(valid('filtered'))
    a.add({ kind: 'failed', errorType: 'invalid_json', error: '', fields: [], userId: null })
    const b = new OutcomeCounts()
    b.add(valid('processed', 'US'))
    b.add({ kind: 'failed', errorType: 'invalid_field', error: '', fields: ['ip'], userId: 'u' })
    a.merge(b)
    expect(a.toJSON()).toEqual({
      received: 5,
      processed: 2,
      filtered: { stale: 1, app_version: 0 },
      errors: { invalid_json: 1, missing_fields: 0, invalid_field: 1 },
      device_types: { android: 2, iOS: 1 },
      locales: { RU: 2, US: 1 },
      app_versions: { '2.3.0': 2, '2.2.0': 1 },
    })
    expect(a.filteredTotal).toBe(1)
    expect(a.errorsTotal).toBe(2)
  })

  it('counts a locale called "__proto__" as data', () => {
    const c = new OutcomeCounts()
    c.add(valid('processed', '__proto__'))
    const json = JSON.parse(JSON.stringify(c.toJSON())) as { locales: Record<string, number> }
    expect(Object.entries(json.locales)).toEqual([['__proto__', 1]])
  })

  it('bounds the distinct values per category', () => {
    const c = new OutcomeCounts()
    for (let i = 0; i < MAX_CATEGORY_VALUES + 50; i++) c.add(valid('processed', `L${i}`))
    expect(c.locales.size).toBe(MAX_CATEGORY_VALUES + 1)
    expect(c.locales.get(OTHER_CATEGORY)).toBe(50)
  })

  it('summaryRecord has the window and the instance', () => {
    const total = new OutcomeCounts()
    total.add(valid('processed'))
    const record = summaryRecord('host-1', total, new OutcomeCounts(), Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1, 0, 0, 10))
    expect(record).toMatchObject({ instance_id: 'host-1', window_start: '2026-01-01T00:00:00.000Z', window_end: '2026-01-01T00:00:10.000Z', time: '2026-01-01T00:00:10.000Z' })
    expect(record.total.processed).toBe(1)
    expect(record.window.received).toBe(0)
    expect(record).not.toHaveProperty('final')
    expect(summaryRecord('host-1', total, new OutcomeCounts(), 0, 10, true).final).toBe(true)
  })
})

describe('PercentileHistogram', () => {
  it('reports percentiles within 2 % and the exact max', () => {
    const h = new PercentileHistogram()
    for (let v = 1; v <= 1000; v++) h.record(v)
    const s = h.summary()
    expect(s.p50).toBeGreaterThanOrEqual(500)
    expect(s.p50).toBeLessThanOrEqual(510)
    expect(s.p95).toBeGreaterThanOrEqual(950)
    expect(s.p95).toBeLessThanOrEqual(969)
    expect(s.p99).toBeGreaterThanOrEqual(990)
    expect(s.p99).toBeLessThanOrEqual(1000)
    expect(s.max).toBe(1000)
  })

  it('is all zeros when empty and after reset; ignores negative and NaN', () => {
    const h = new PercentileHistogram()
    h.record(-5)
    h.record(Number.NaN)
    expect(h.summary()).toEqual({ p50: 0, p95: 0, p99: 0, max: 0 })
    h.record(3)
    h.reset()
    expect(h.count).toBe(0)
    expect(h.summary().max).toBe(0)
  })

  it('counts tiny values in the first bucket', () => {
    const h = new PercentileHistogram()
    h.record(0)
    h.record(0.05)
    expect(h.quantile(0.99)).toBeLessThanOrEqual(0.1)
  })
})
