import { describe, expect, it } from 'vitest'
import { decodeSample, isCollectorTime, normaliseTime } from './decode.ts'

const b = (text: string) => Buffer.from(text)
const SPEC_SAMPLE = {
  host: 'web-1', time: '2026-11-24T10:00:00.500Z', cpu_usage: 12.5, memory_usage: 43.1,
  cpu_interrupts: 123456789, cpu_calls: null, memory_used: 7340032000, memory_free: 1048576000,
  bytes_sent: 123456, bytes_received: 654321, disk_usage: 57.3,
}

describe('decodeSample: JSON', () => {
  it('turns the SPEC sample into a row, numbers as exact text', () => {
    const result = decodeSample(b(JSON.stringify(SPEC_SAMPLE)), b('other-key'))
    expect(result).toEqual({
      ok: true,
      row: {
        host: 'web-1',
        time: '2026-11-24T10:00:00.500000Z',
        values: { cpu_usage: '12.5', memory_usage: '43.1', cpu_interrupts: '123456789', cpu_calls: null, memory_used: '7340032000', memory_free: '1048576000', bytes_sent: '123456', bytes_received: '654321', disk_usage: '57.3' },
      },
    })
  })

  it('takes the host from the key when the sample has none, else unknown; extra fields are ignored', () => {
    const { host: _host, ...rest } = SPEC_SAMPLE
    const keyed = decodeSample(b(JSON.stringify({ ...rest, context_switches: 5 })), b('db-2'))
    expect(keyed.ok && keyed.row.host).toBe('db-2')
    const unkeyed = decodeSample(b(JSON.stringify(rest)), undefined)
    expect(unkeyed.ok && unkeyed.row.host).toBe('unknown')
  })

  it('refuses counters of 10^18 and above (the column holds 18 digits), keeps 15-digit ones exact', () => {
    expect(decodeSample(b(JSON.stringify({ ...SPEC_SAMPLE, bytes_sent: 1e18 })), undefined)).toMatchObject({ ok: false, errorType: 'invalid_sample' })
    const big = decodeSample(b(JSON.stringify({ ...SPEC_SAMPLE, bytes_sent: 123456789012345 })), undefined)
    expect(big.ok && big.row.values.bytes_sent).toBe('123456789012345')
  })

  it.each([
    ['not JSON', '{"host":', 'invalid_json'],
    ['an array', '[1,2]', 'invalid_json'],
    ['plain words', 'hello world', 'invalid_json'],
    ['no time', JSON.stringify({ ...SPEC_SAMPLE, time: undefined }), 'invalid_sample'],
    ['a bad time', JSON.stringify({ ...SPEC_SAMPLE, time: '2026-02-31T00:00:00Z' }), 'invalid_sample'],
    ['a number as text', JSON.stringify({ ...SPEC_SAMPLE, cpu_usage: '12.5' }), 'invalid_sample'],
    ['a percentage over 100', JSON.stringify({ ...SPEC_SAMPLE, disk_usage: 100.5 }), 'invalid_sample'],
    ['a negative counter', JSON.stringify({ ...SPEC_SAMPLE, bytes_received: -1 }), 'invalid_sample'],
    ['an empty host', JSON.stringify({ ...SPEC_SAMPLE, host: ' ' }), 'invalid_sample'],
    ['empty', '', 'invalid_sample'],
  ])('refuses %s', (_name, text, errorType) => {
    expect(decodeSample(b(text), undefined)).toMatchObject({ ok: false, errorType })
  })

  it('refuses bytes that are not UTF-8', () => {
    expect(decodeSample(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), undefined)).toMatchObject({ ok: false, errorType: 'invalid_encoding' })
  })
})

describe('decodeSample: the original comma-separated format', () => {
  it('reads the line of the original pipeline, naive local time, host from the key', () => {
    const result = decodeSample(b('2024-11-20 10:00:00.123456, 12.5, 45.2, 123,0,7340032000,1048576000,123456,654321, 57.3'), b('web-1'))
    const local = new Date(2024, 10, 20, 10, 0, 0, 123).toISOString()
    expect(result).toEqual({
      ok: true,
      row: {
        host: 'web-1',
        time: `${local.slice(0, 23)}456Z`,
        values: { cpu_usage: '12.5', memory_usage: '45.2', cpu_interrupts: '123', cpu_calls: '0', memory_used: '7340032000', memory_free: '1048576000', bytes_sent: '123456', bytes_received: '654321', disk_usage: '57.3' },
      },
    })
  })

  it('without a key the host is unknown', () => {
    const result = decodeSample(b('2024-11-20 10:00:00, 1, 2, 3,0,4,5,6,7, 8\n'), undefined)
    expect(result.ok && result.row.host).toBe('unknown')
  })

  it.each([
    ['too few fields', '2024-11-20 10:00:00, 12.5, 45.2'],
    ['a word for a number', '2024-11-20 10:00:00, high, 45.2, 123,0,7340032000,1048576000,123456,654321, 57.3'],
    ['a bad date', '2024-13-20 10:00:00, 12.5, 45.2, 123,0,7340032000,1048576000,123456,654321, 57.3'],
  ])('refuses %s', (_name, text) => {
    expect(decodeSample(b(text), undefined)).toMatchObject({ ok: false, errorType: 'invalid_csv' })
  })
})

describe('normaliseTime', () => {
  it('keeps microseconds and applies offsets', () => {
    expect(normaliseTime('2026-11-24T10:00:00.123456Z')).toBe('2026-11-24T10:00:00.123456Z')
    expect(normaliseTime('2026-11-24T12:00:00.5+02:00')).toBe('2026-11-24T10:00:00.500000Z')
    expect(normaliseTime('2026-11-24T05:30:00-0430')).toBe('2026-11-24T10:00:00.000000Z')
    expect(normaliseTime('2026-11-24T10:00:00.1234567891Z')).toBeUndefined()
  })

  it('refuses impossible dates and times', () => {
    for (const bad of ['2026-02-30T00:00:00Z', '2026-11-24T24:00:00Z', '1969-12-31T23:59:59Z', 'yesterday', '2026-11-24']) expect(normaliseTime(bad)).toBeUndefined()
  })

  it('takes the collector\'s own times (toISOString) digit by digit, exactly as a Date parse and print would', () => {
    // what the fast path replaced: a Date round trip, which refuses 31 February and 24:00
    const byDate = (text: string) => {
      const ms = Date.parse(text)
      return text.length === 24 && text.endsWith('Z') && ms >= 0 && new Date(ms).toISOString() === text
    }
    const valid: string[] = []
    // nearly every day (a day and 62 minutes apart) of years around 1970, leap years by 4, 100 and 400, and the last one toISOString writes in 24 characters
    for (const year of [1970, 1971, 1972, 2000, 2023, 2024, 2100, 2400, 9999]) {
      for (let ms = Date.UTC(year, 0, 1); ms < Date.UTC(year + 1, 0, 1); ms += 86_400_000 + 3_723_001) valid.push(new Date(ms).toISOString())
    }
    valid.push('1970-01-01T00:00:00.000Z', '2024-02-29T23:59:59.999Z')
    const candidates = new Set(valid)
    // each character of some of them changed to each of these: near misses of every field
    for (const text of valid.filter((_, i) => i % 37 === 0)) {
      for (let i = 0; i < text.length; i++) for (const c of '0123456789-T:.Z x') candidates.add(text.slice(0, i) + c + text.slice(i + 1))
    }
    for (const near of ['1969-12-31T23:59:59.999Z', '2023-02-29T00:00:00.000Z', '2100-02-29T00:00:00.000Z', '2026-04-31T00:00:00.000Z', '2026-11-24T24:00:00.000Z',
      '2026-11-24T10:60:00.000Z', '2026-11-24T10:00:60.000Z', '2026-13-01T00:00:00.000Z', '2026-00-01T00:00:00.000Z', '2026-11-00T00:00:00.000Z', '2026-11-24t10:00:00.000Z',
      '+02026-11-24T10:00:00.00Z', '2026-11-24T10:00:00.000z', '2026-11-24T10:00:00.0000']) candidates.add(near)
    let accepted = 0
    for (const text of candidates) {
      expect(isCollectorTime(text), text).toBe(byDate(text))
      if (byDate(text)) {
        accepted++
        expect(normaliseTime(text), text).toBe(`${text.slice(0, 23)}000Z`)
      }
    }
    expect(accepted).toBeGreaterThan(valid.length)
  })
})
