import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { pseudonymiseDeviceId, pseudonymiseDeviceIdBytes } from './pseudonymise.ts'

describe('pseudonymiseDeviceId', () => {
  // RFC 4231, HMAC-SHA-256 test cases 1 and 2
  it('matches RFC 4231 test case 1', () => {
    expect(pseudonymiseDeviceId(Buffer.alloc(20, 0x0b), 'Hi There')).toBe('b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7')
  })
  it('matches RFC 4231 test case 2', () => {
    expect(pseudonymiseDeviceId('Jefe', 'what do ya want for nothing?')).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843')
  })
  it('is stable per key and differs between keys', () => {
    const a = pseudonymiseDeviceId('key-number-one-0123', '593-47-5928')
    expect(a).toMatch(/^[0-9a-f]{64}$/)
    expect(pseudonymiseDeviceId('key-number-one-0123', '593-47-5928')).toBe(a)
    expect(pseudonymiseDeviceId('key-number-two-0123', '593-47-5928')).not.toBe(a)
    expect(pseudonymiseDeviceId('key-number-one-0123', '593-47-5929')).not.toBe(a)
  })

  // the pseudonym is HMAC-SHA-256 as createHmac computes it, whatever the key's length and the id's characters
  const keys = ['', 'k', 'a'.repeat(63), 'b'.repeat(64), 'c'.repeat(65), 'é'.repeat(40), 'secret key of the processor'.repeat(9)]
  const ids = ['', 'device-0001', '593-47-0001', 'ü-ñ-日本-🙂', 'lone \ud800 surrogate', '\udfff', 'x'.repeat(256), 'y'.repeat(257), 'z'.repeat(5000)]

  it('is the HMAC-SHA-256 of the id under the key, as lowercase hex', () => {
    for (const key of keys) {
      for (const id of ids) {
        const expected = createHmac('sha256', key).update(id).digest('hex')
        expect(pseudonymiseDeviceId(key, id), `key of ${key.length}, id of ${id.length}`).toBe(expected)
        expect(pseudonymiseDeviceId(Buffer.from(key), id)).toBe(expected)
        // the id as bytes amid others (the rules thread's packed records)
        const bytes = Buffer.concat([Buffer.from('{"x":"'), Buffer.from(id), Buffer.from('"}')])
        expect(pseudonymiseDeviceIdBytes(key, bytes, 6, bytes.length - 2)).toBe(createHmac('sha256', key).update(Buffer.from(id)).digest('hex'))
      }
    }
  })

  it('does not carry one id into the next (a shorter id after a longer one)', () => {
    const long = pseudonymiseDeviceId('key', 'a-long-device-identifier')
    expect(pseudonymiseDeviceId('key', 'a')).toBe(createHmac('sha256', 'key').update('a').digest('hex'))
    expect(pseudonymiseDeviceId('key', 'a-long-device-identifier')).toBe(long)
  })
})
