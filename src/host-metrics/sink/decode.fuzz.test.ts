import fc from 'fast-check'
import { expect, test } from 'vitest'
import { fuzzParameters, fuzzTimeout, noise } from '../../../test/support/fuzz.ts'
import { PERCENT_COLUMNS, SAMPLE_COLUMNS } from '../sample.ts'
import { decodeSample } from './decode.ts'

const RUNS = 3000
type Made = 'absent' | 'null' | 'valid' | 'out_of_range' | 'wrong_type'

const time = fc.date({ min: new Date('1971-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString())
const badTime = fc.oneof(fc.constantFrom('2026-02-31T10:00:00Z', '2026-13-01T00:00:00Z', 'yesterday', '', '1969-12-31T23:59:59Z', '2026-11-24T25:00:00Z'), fc.integer(), fc.constant(null))

function column(percent: boolean): fc.Arbitrary<[Made, unknown]> {
  const max = percent ? 100 : 1e18 - 1e3
  return fc.oneof(
    { weight: 6, arbitrary: fc.oneof(fc.double({ min: 0, max, noNaN: true }), fc.integer({ min: 0, max: percent ? 100 : Number.MAX_SAFE_INTEGER })).map((v): [Made, unknown] => ['valid', v]) },
    { weight: 1, arbitrary: fc.constant<[Made, unknown]>(['absent', undefined]) },
    { weight: 1, arbitrary: fc.constant<[Made, unknown]>(['null', null]) },
    { weight: 1, arbitrary: fc.oneof(fc.double({ max: -Number.MIN_VALUE, noNaN: true, noDefaultInfinity: true }), fc.double({ min: percent ? 100.000001 : 1e18, noNaN: true, noDefaultInfinity: true })).map((v): [Made, unknown] => ['out_of_range', v]) },
    { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 5 }), fc.boolean(), fc.constant([1])).map((v): [Made, unknown] => ['wrong_type', v]) },
  )
}

const sample = fc.record({
  host: fc.oneof(
    { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 20 }).filter((h) => h.trim() !== '').map((h) => ['valid', h] as [string, unknown]) },
    { weight: 1, arbitrary: fc.constant(['absent', undefined] as [string, unknown]) },
    { weight: 1, arbitrary: fc.oneof(fc.constantFrom('', '  '), fc.integer()).map((h) => ['invalid', h] as [string, unknown]) },
  ),
  time: fc.oneof({ weight: 6, arbitrary: time.map((t) => ['valid', t] as [string, unknown]) }, { weight: 1, arbitrary: badTime.map((t) => ['invalid', t] as [string, unknown]) }),
  columns: fc.tuple(...SAMPLE_COLUMNS.map((c) => column(PERCENT_COLUMNS.has(c)))),
  key: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
})

test('sample decoder: every generated JSON sample becomes a row exactly when every field is right, with the values the table keeps', () => {
  fc.assert(
    fc.property(sample, (s) => {
      const object: Record<string, unknown> = {}
      if (s.host[1] !== undefined) object.host = s.host[1]
      object.time = s.time[1]
      SAMPLE_COLUMNS.forEach((c, i) => {
        if (s.columns[i]![1] !== undefined) object[c] = s.columns[i]![1]
      })
      const result = decodeSample(Buffer.from(JSON.stringify(object)), s.key === undefined ? undefined : Buffer.from(s.key))
      const good = s.host[0] !== 'invalid' && s.time[0] === 'valid' && s.columns.every(([made]) => made === 'valid' || made === 'null' || made === 'absent')
      expect(result.ok, JSON.stringify(result)).toBe(good)
      if (!result.ok) {
        expect(result.errorType).toBe('invalid_sample')
        return
      }
      expect(result.row.host).toBe(s.host[0] === 'valid' ? (s.host[1] as string).trim() : s.key?.trim() || 'unknown')
      expect(Date.parse(result.row.time)).toBe(Date.parse(s.time[1] as string))
      SAMPLE_COLUMNS.forEach((c, i) => {
        const [made, v] = s.columns[i]!
        const want = made === 'valid' ? String(PERCENT_COLUMNS.has(c) ? Math.round((v as number) * 100) / 100 : Math.round(v as number)) : null
        expect(result.row.values[c]).toBe(want)
        if (want !== null) expect(want).toMatch(/^\d+(\.\d{1,2})?$/)
      })
    }),
    fuzzParameters(RUNS),
  )
}, fuzzTimeout(RUNS))

test('sample decoder: the comma-separated format, well formed or not', () => {
  const field = fc.oneof(fc.integer({ min: 0, max: 100 }).map(String), fc.constantFrom('', 'None', 'nan', '-1', '1e30', 'x', '12.5'))
  fc.assert(
    fc.property(time, fc.array(field, { minLength: 8, maxLength: 11 }), (t, fields) => {
      const line = `${t.replace('T', ' ').replace('Z', '')}, ${fields.join(', ')}`
      const result = decodeSample(Buffer.from(line), undefined)
      // '-1' is below every range, '1e30' above every range, 'x' no number: each refuses the line
      const good = fields.length === SAMPLE_COLUMNS.length && fields.every((f) => !['-1', '1e30', 'x'].includes(f))
      expect(result.ok, JSON.stringify(result)).toBe(good)
      if (!result.ok) expect(result.errorType).toBe('invalid_csv')
      if (result.ok) expect(result.row.host).toBe('unknown')
    }),
    fuzzParameters(RUNS),
  )
}, fuzzTimeout(RUNS))

test('sample decoder: any bytes at all are a row or exactly one error type, never a throw', () => {
  fc.assert(
    fc.property(fc.oneof(noise, fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')), fc.constant(undefined)), fc.option(noise, { nil: undefined }), (value, key) => {
      const result = decodeSample(value, key)
      if (result.ok) expect(SAMPLE_COLUMNS.every((c) => result.row.values[c] === null || /^\d+(\.\d+)?$/.test(result.row.values[c]!))).toBe(true)
      else expect(['invalid_encoding', 'invalid_json', 'invalid_sample', 'invalid_csv']).toContain(result.errorType)
    }),
    fuzzParameters(RUNS),
  )
}, fuzzTimeout(RUNS))
