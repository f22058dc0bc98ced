import { isIP, isIPv4 } from 'node:net'
import fc from 'fast-check'
import { expect, test } from 'vitest'
import { fuzzParameters, fuzzTimeout } from '../../../test/support/fuzz.ts'
import { ipv6Groups, maskIp } from './mask-ip.ts'

const RUNS = 3000

/** Text that is an address, nearly one, or anything at all. */
const addressLike = fc.oneof(
  fc.ipV4(),
  fc.ipV4Extended(),
  fc.ipV6(),
  fc.ipV6().map((ip) => ip.toUpperCase()),
  fc.tuple(fc.ipV6(), fc.string({ maxLength: 6 })).map(([ip, zone]) => `${ip}%${zone}`),
  fc.array(fc.integer({ min: -5, max: 300 }), { minLength: 1, maxLength: 6 }).map((n) => n.join('.')),
  fc.array(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), maxLength: 5 }), { minLength: 1, maxLength: 10 }).map((g) => g.join(':')),
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF.:%x '), maxLength: 48 }),
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
)

test('maskIp: any text is masked or refused, never thrown on; what it masks is an address, and the host part is gone', () => {
  fc.assert(
    fc.property(addressLike, (text) => {
      const masked = maskIp(text)
      if (masked === undefined) {
        // refused: not an address, or one of the forms refused on purpose (leading zeros, zone ids)
        if (isIP(text) !== 0) expect(text.includes('%') || isIPv4(text)).toBe(true)
        if (isIPv4(text)) expect(text.split('.').some((o) => o.length > 1 && o.startsWith('0'))).toBe(true)
        return
      }
      expect(isIP(text)).not.toBe(0)
      if (isIPv4(text)) {
        expect(masked).toBe(`${text.split('.').slice(0, 3).join('.')}.xxx`)
      } else {
        const groups = ipv6Groups(text)!
        expect(groups).toHaveLength(8)
        const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff
        if (mapped) expect(masked).toBe(`::ffff:${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.xxx`)
        else expect(masked).toBe(`${groups.slice(0, 3).map((g) => g.toString(16)).join(':')}:xxxx:xxxx:xxxx:xxxx:xxxx`)
      }
      // masking is idempotent in what it keeps: masking never reveals more than the prefix
      expect(masked.endsWith('xxx')).toBe(true)
    }),
    fuzzParameters(RUNS),
  )
}, fuzzTimeout(RUNS))

test('maskIp: every canonical IPv4 and every IPv6 address is masked', () => {
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (ip) => {
      expect(maskIp(ip)).toBeDefined()
    }),
    fuzzParameters(RUNS),
  )
}, fuzzTimeout(RUNS))

/** Eight groups written out in one of the ways IPv6 allows: full, zero-padded, a `::` gap, upper case, a dotted tail. */
const ipv6FromGroups = fc
  .tuple(fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }), fc.nat(8), fc.nat(8), fc.boolean(), fc.boolean(), fc.boolean())
  .map(([groups, a, b, pad, upper, dotted]) => {
    let parts = groups.map((g) => (pad ? g.toString(16).padStart(4, '0') : g.toString(16)))
    if (dotted) parts = [...parts.slice(0, 6), `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`]
    const [from, to] = [Math.min(a, b), Math.max(a, b)]
    const zeroRun = to > from && to <= 6 && groups.slice(from, to).every((g) => g === 0)
    let text = zeroRun ? `${parts.slice(0, from).join(':')}::${parts.slice(to).join(':')}` : parts.join(':')
    if (upper) text = text.toUpperCase()
    return { groups, text }
  })

test('maskIp: an IPv6 address keeps exactly its first 48 bits, however it is written', () => {
  fc.assert(
    fc.property(ipv6FromGroups, ({ groups, text }) => {
      const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff
      expect(maskIp(text)).toBe(
        mapped
          ? `::ffff:${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.xxx`
          : `${groups[0]!.toString(16)}:${groups[1]!.toString(16)}:${groups[2]!.toString(16)}:xxxx:xxxx:xxxx:xxxx:xxxx`,
      )
    }),
    fuzzParameters(RUNS),
  )
}, fuzzTimeout(RUNS))
