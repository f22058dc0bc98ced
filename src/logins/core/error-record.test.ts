import { describe, expect, it } from 'vitest'
import { errorRecord, MAX_ERROR_RECORD_BYTES } from './error-record.ts'
import type { FailedLogin } from './login-event.ts'

const source = { topic: 'user-login', partition: 1, offset: 7n }
const failure = (userId: string | null = 'u1'): FailedLogin => ({ kind: 'failed', errorType: 'invalid_field', error: 'invalid: ip is not an IPv4 or IPv6 address', fields: ['ip'], userId })
type Parsed = { raw: string | null; raw_encoding: string; raw_bytes?: number; user_id: string | null }

/** A record over the broker's 1 MiB limit would be refused, and its batch retried for ever. */
describe('errorRecord of a huge input stays under the broker limit', () => {
  it('keeps a payload whose escaped text fits as UTF-8 text', () => {
    const raw = Buffer.from(JSON.stringify({ user_id: 'u1', ip: 'x'.repeat(500_000) }))
    const text = errorRecord(failure(), raw, source, 'now')
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_ERROR_RECORD_BYTES)
    expect(JSON.parse(text)).toMatchObject({ raw: raw.toString('utf8'), raw_encoding: 'utf8' })
  })

  it('sends a payload that escaping would blow past the limit as base64, byte for byte', () => {
    // 400 KB of control characters and quotes: 1.6 MB once escaped
    const raw = Buffer.from(`{"ip":"${'\u0001"'.repeat(200_000)}"}`)
    expect(Buffer.byteLength(JSON.stringify(raw.toString('utf8')))).toBeGreaterThan(MAX_ERROR_RECORD_BYTES)
    const text = errorRecord(failure(), raw, source, 'now')
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_ERROR_RECORD_BYTES)
    const record = JSON.parse(text) as Parsed
    expect(record.raw_encoding).toBe('base64')
    expect(Buffer.from(record.raw!, 'base64')).toEqual(raw)
  })

  it('leaves out a payload that does not fit even as base64, naming its size (the source offset still finds it)', () => {
    const raw = Buffer.alloc(1_000_000, 0xff)
    const text = errorRecord(failure(), raw, source, 'now')
    expect(Buffer.byteLength(text)).toBeLessThan(2000)
    expect(JSON.parse(text)).toMatchObject({ raw: null, raw_encoding: 'omitted', raw_bytes: 1_000_000, source: { topic: 'user-login', partition: 1, offset: 7 } })
  })

  it('names no user id of absurd length (the raw payload has it)', () => {
    const record = JSON.parse(errorRecord(failure('u'.repeat(300_000)), Buffer.from('{}'), source, 'now')) as Parsed
    expect(record.user_id).toBeNull()
    expect((JSON.parse(errorRecord(failure('u'.repeat(1024)), Buffer.from('{}'), source, 'now')) as Parsed).user_id).toBe('u'.repeat(1024))
  })
})
