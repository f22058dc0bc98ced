import { isIPv6 } from 'node:net'

/**
 * Masks an IP address so that it still tells the network, not the subscriber: IPv4 keeps its
 * first three octets (`199.172.111.xxx`), IPv6 its first 48 bits (the routing prefix a provider
 * assigns to a site) with the remaining five groups written as `xxxx`. An IPv4-mapped IPv6
 * address (`::ffff:1.2.3.4`) is masked like the IPv4 address it carries, since its first 48
 * bits are all zero and would say nothing. Returns undefined for anything that is not an address.
 */
export function maskIp(text: string): string | undefined {
  if (text.length <= 15 && text.indexOf(':') === -1) {
    const prefix = ipv4Prefix(text)
    return prefix === undefined ? undefined : `${prefix}.xxx`
  }
  const groups = ipv6Groups(text)
  if (groups === undefined) return undefined
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `::ffff:${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.xxx`
  }
  return `${groups[0]!.toString(16)}:${groups[1]!.toString(16)}:${groups[2]!.toString(16)}:xxxx:xxxx:xxxx:xxxx:xxxx`
}

/**
 * The first three octets of a dotted-quad IPv4 address as written, or undefined when the text is
 * not exactly four decimal octets 0–255. Leading zeros are refused: `010` means 8 to some parsers
 * and 10 to others, so such an address is ambiguous.
 */
export function ipv4Prefix(text: string): string | undefined {
  let octets = 0
  let value = 0
  let digits = 0
  let thirdDot = -1
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46 /* '.' ends the last octet */
    if (c === 46) {
      if (digits === 0 || value > 255) return undefined
      octets++
      if (octets === 3) thirdDot = i
      value = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && value === 0) return undefined
      value = value * 10 + (c - 48)
      if (++digits > 3) return undefined
    } else {
      return undefined
    }
  }
  return octets === 4 ? text.slice(0, thirdDot) : undefined
}

/** The eight 16-bit groups of an IPv6 address (compressed, full or with an embedded IPv4), or undefined. */
export function ipv6Groups(text: string): number[] | undefined {
  // Zone ids (`fe80::1%eth0`) name an interface of the sender's own machine: not an address we can use.
  if (text.length > 45 || text.indexOf('%') !== -1 || !isIPv6(text)) return undefined
  let head = text
  let tail = ''
  const gap = text.indexOf('::')
  if (gap !== -1) {
    head = text.slice(0, gap)
    tail = text.slice(gap + 2)
  }
  const parse = (part: string): number[] => {
    if (part === '') return []
    const out: number[] = []
    for (const piece of part.split(':')) {
      if (piece.indexOf('.') !== -1) {
        const [a, b, c, d] = piece.split('.').map(Number) as [number, number, number, number]
        out.push((a << 8) | b, (c << 8) | d)
      } else {
        out.push(parseInt(piece, 16))
      }
    }
    return out
  }
  const first = parse(head)
  const last = parse(tail)
  const zeros = 8 - first.length - last.length
  if (zeros < 0 || (gap === -1 && zeros !== 0)) return undefined
  return [...first, ...new Array<number>(zeros).fill(0), ...last]
}
