/**
 * Synthetic login events like the data-generator container's, from a seeded PRNG: the same seed
 * gives the same users, devices, versions, addresses and invalid records in the same order.
 * Only the timestamps follow the clock, because events must be current not to be stale.
 */

export type GeneratedKind = 'valid' | 'malformed_json' | 'missing_field' | 'wrong_type' | 'stale' | 'not_utf8'
export const INVALID_KINDS: GeneratedKind[] = ['malformed_json', 'missing_field', 'wrong_type', 'stale', 'not_utf8']

export interface GeneratedLogin {
  kind: GeneratedKind
  /** user_id when the event has one */
  key: string | undefined
  value: string | Buffer
}

const LOCALES: [string, number][] = [
  ['US', 18], ['IN', 12], ['BR', 8], ['DE', 7], ['GB', 7], ['RU', 6], ['FR', 6], ['JP', 5], ['MX', 5],
  ['ES', 4], ['IT', 4], ['CA', 4], ['KR', 3], ['TR', 3], ['ID', 3], ['NL', 2], ['PL', 2], ['AU', 2],
  ['NG', 2], ['SE', 1], ['AR', 1], ['ZA', 1], ['EG', 1], ['VN', 1],
]
const APP_VERSIONS: [string, number][] = [['2.3.0', 85], ['2.2.0', 7], ['2.1.1', 5], ['3.0.0-beta', 3]]
const DEVICE_TYPES: [string, number][] = [['android', 55], ['iOS', 45]]
const IPV6_SHARE = 0.1

/** sfc32: small, fast, and good enough for test data; seeded through splitmix32. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = split(), b = split(), c = split(), d = split()
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) >>> 0
    return t / 4294967296
  }
}

export class LoginGenerator {
  readonly #random: () => number
  readonly #invalidRatio: number

  constructor(seed: number, invalidRatio = 0) {
    if (!(invalidRatio >= 0 && invalidRatio <= 1)) throw new RangeError(`invalidRatio must be from 0 to 1, got ${invalidRatio}`)
    this.#random = seededRandom(seed)
    this.#invalidRatio = invalidRatio
  }

  next(nowSeconds: number): GeneratedLogin {
    const event = this.#validEvent(nowSeconds)
    if (this.#invalidRatio === 0 || this.#random() >= this.#invalidRatio) {
      return { kind: 'valid', key: event.user_id as string, value: JSON.stringify(event) }
    }
    const kind = INVALID_KINDS[this.#int(INVALID_KINDS.length)]!
    return this.#spoil(kind, event, nowSeconds)
  }

  #spoil(kind: GeneratedKind, event: Record<string, unknown>, nowSeconds: number): GeneratedLogin {
    const key = event.user_id as string
    switch (kind) {
      case 'malformed_json': {
        const text = JSON.stringify(event)
        return { kind, key, value: text.slice(0, 1 + this.#int(text.length - 1)) }
      }
      case 'missing_field': {
        const field = ['ip', 'device_id', 'app_version', 'device_type', 'timestamp', 'locale'][this.#int(6)]!
        const how = this.#int(3)
        if (how === 0) delete event[field]
        else event[field] = how === 1 ? null : ''
        return { kind, key, value: JSON.stringify(event) }
      }
      case 'wrong_type': {
        const how = this.#int(4)
        if (how === 0) event.timestamp = new Date(nowSeconds * 1000).toISOString()
        else if (how === 1) event.ip = `${256 + this.#int(700)}.1.2.3`
        else if (how === 2) event.device_type = { name: event.device_type }
        else event.timestamp = nowSeconds + 0.5
        return { kind, key, value: JSON.stringify(event) }
      }
      case 'stale':
        event.timestamp = String(nowSeconds - 3600 - this.#int(86_400))
        return { kind, key, value: JSON.stringify(event) }
      case 'not_utf8': {
        const bytes = Buffer.from(JSON.stringify(event))
        bytes[1 + this.#int(bytes.length - 2)] = 0xff
        return { kind, key, value: bytes }
      }
      default:
        return { kind: 'valid', key, value: JSON.stringify(event) }
    }
  }

  #validEvent(nowSeconds: number): Record<string, unknown> {
    return {
      user_id: this.#uuid(),
      app_version: this.#pick(APP_VERSIONS),
      device_type: this.#pick(DEVICE_TYPES),
      ip: this.#random() < IPV6_SHARE ? this.#ipv6() : this.#ipv4(),
      locale: this.#pick(LOCALES),
      device_id: `${this.#digits(3)}-${this.#digits(2)}-${this.#digits(4)}`,
      timestamp: String(nowSeconds),
    }
  }

  #int(n: number): number {
    return Math.floor(this.#random() * n)
  }

  #pick(weighted: [string, number][]): string {
    let total = 0
    for (const [, w] of weighted) total += w
    let r = this.#random() * total
    for (const [value, w] of weighted) {
      if ((r -= w) < 0) return value
    }
    return weighted[weighted.length - 1]![0]
  }

  #digits(n: number): string {
    let s = ''
    for (let i = 0; i < n; i++) s += String(this.#int(10))
    return s
  }

  #hex(digits: number): string {
    let s = ''
    for (let i = 0; i < digits; i++) s += this.#int(16).toString(16)
    return s
  }

  #uuid(): string {
    const variant = (8 + this.#int(4)).toString(16)
    return `${this.#hex(8)}-${this.#hex(4)}-4${this.#hex(3)}-${variant}${this.#hex(3)}-${this.#hex(12)}`
  }

  #ipv4(): string {
    // public-looking unicast: first octet 1–223 except 10 and 127
    let first = 1 + this.#int(223)
    if (first === 10 || first === 127) first++
    return `${first}.${this.#int(256)}.${this.#int(256)}.${this.#int(256)}`
  }

  #ipv6(): string {
    const groups = ['2001', 'db8', this.#int(65536).toString(16)]
    for (let i = 0; i < 5; i++) groups.push(this.#int(65536).toString(16))
    return this.#random() < 0.5 ? groups.join(':') : `${groups.slice(0, 3).join(':')}::${groups[7]}`
  }
}
