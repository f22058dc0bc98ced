import { describe, expect, it } from 'vitest'
import { maskIp } from './mask-ip.ts'

describe('maskIp', () => {
  it.each([
    // IPv4: the first three octets stay, the last becomes xxx
    ['199.172.111.135', '199.172.111.xxx'],
    ['0.0.0.0', '0.0.0.xxx'],
    ['255.255.255.255', '255.255.255.xxx'],
    ['10.0.0.1', '10.0.0.xxx'],
    // IPv6: the first 48 bits stay, written without leading zeros
    ['2001:0db8:85a3:0000:0000:8a2e:0370:7334', '2001:db8:85a3:xxxx:xxxx:xxxx:xxxx:xxxx'],
    ['2001:db8:85a3::8a2e:370:7334', '2001:db8:85a3:xxxx:xxxx:xxxx:xxxx:xxxx'],
    ['2001:DB8::1', '2001:db8:0:xxxx:xxxx:xxxx:xxxx:xxxx'],
    ['::1', '0:0:0:xxxx:xxxx:xxxx:xxxx:xxxx'],
    ['::', '0:0:0:xxxx:xxxx:xxxx:xxxx:xxxx'],
    ['fe80::', 'fe80:0:0:xxxx:xxxx:xxxx:xxxx:xxxx'],
    ['2001:db8:1:2:3:4:1.2.3.4', '2001:db8:1:xxxx:xxxx:xxxx:xxxx:xxxx'],
    // IPv4-mapped IPv6: masked like the IPv4 address inside
    ['::ffff:199.172.111.135', '::ffff:199.172.111.xxx'],
    ['::ffff:c7ac:6f87', '::ffff:199.172.111.xxx'],
    ['0:0:0:0:0:ffff:1.2.3.4', '::ffff:1.2.3.xxx'],
  ])('masks %s as %s', (ip, masked) => {
    expect(maskIp(ip)).toBe(masked)
  })

  it.each([
    ['leading zero', '01.2.3.4'],
    ['leading zeros in the last octet', '1.2.3.004'],
    ['five octets', '1.2.3.4.5'],
    ['three octets', '1.2.3'],
    ['octet over 255', '256.1.1.1'],
    ['empty octet', '1..3.4'],
    ['trailing dot', '1.2.3.4.'],
    ['sign', '+1.2.3.4'],
    ['spaces', ' 1.2.3.4'],
    ['four digits', '1000.1.1.1'],
    ['hex IPv4', '0x7f.0.0.1'],
    ['empty', ''],
    ['text', 'localhost'],
    ['two gaps', '1::2::3'],
    ['nine IPv6 groups', '1:2:3:4:5:6:7:8:9'],
    ['IPv6 group of five digits', '12345::1'],
    ['zone id', 'fe80::1%eth0'],
    ['IPv6 with bad IPv4 tail', '::ffff:1.2.3.256'],
    ['full-width digits', '１.２.３.４'],
  ])('refuses %s (%s)', (_why, ip) => {
    expect(maskIp(ip)).toBeUndefined()
  })
})
