import { describe, expect, it } from 'vitest'
import { pseudonymiseDeviceId } from './pseudonymise.ts'

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
})
