/**
 * Login records that must all end in processed-errors, generated from a seed: each kind aims at
 * a way a parser or a validator goes wrong (stack depth, memory, prototype keys, lenient UTF-8).
 * None of them is a valid event, whatever the random draw.
 */
export type MalformedKind =
  | 'random_bytes' | 'truncated_json' | 'deep_nesting' | 'huge_string' | 'wrong_types'
  | 'prototype_keys' | 'invalid_utf8' | 'not_an_object' | 'no_value'

const KINDS: [MalformedKind, number][] = [
  ['random_bytes', 18], ['truncated_json', 17], ['wrong_types', 18], ['prototype_keys', 14], ['invalid_utf8', 14],
  ['not_an_object', 8], ['deep_nesting', 6], ['huge_string', 3], ['no_value', 2],
]

const FIELDS = ['user_id', 'app_version', 'device_type', 'ip', 'locale', 'device_id', 'timestamp'] as const

export interface MalformedLogin {
  kind: MalformedKind
  key?: string
  value?: Buffer
}

export class MalformedLogins {
  readonly #random: () => number

  constructor(random: () => number) {
    this.#random = random
  }

  next(): MalformedLogin {
    const kind = this.#pick(KINDS)
    const key = this.#random() < 0.8 ? `u-${this.#int(1e9)}` : undefined
    const value = this.#value(kind)
    return { kind, ...(key === undefined ? {} : { key }), ...(value === undefined ? {} : { value }) }
  }

  #value(kind: MalformedKind): Buffer | undefined {
    switch (kind) {
      case 'random_bytes':
        return Buffer.from(Array.from({ length: 1 + this.#int(4096) }, () => this.#int(256)))
      case 'truncated_json': {
        const text = JSON.stringify(this.#event())
        return Buffer.from(text.slice(0, 1 + this.#int(text.length - 1)))
      }
      case 'deep_nesting':
        return Buffer.from(this.#deep())
      case 'huge_string':
        return Buffer.from(this.#huge())
      case 'wrong_types':
        return Buffer.from(JSON.stringify(this.#wrongTypes()))
      case 'prototype_keys':
        return Buffer.from(this.#prototypeKeys())
      case 'invalid_utf8':
        return this.#invalidUtf8()
      case 'not_an_object':
        return Buffer.from(this.#choose(['null', 'true', '0', '-1.5e300', '"a string"', '[]', JSON.stringify([this.#event()]), `"${'x'.repeat(this.#int(100))}"`, '[{"user_id":"u"}]']))
      case 'no_value':
        return this.#random() < 0.5 ? undefined : Buffer.alloc(0)
    }
  }

  /** A valid event: the malformed kinds spoil it. */
  #event(): Record<string, unknown> {
    return {
      user_id: `${this.#hex(8)}-${this.#hex(4)}-4${this.#hex(3)}-a${this.#hex(3)}-${this.#hex(12)}`,
      app_version: '2.3.0',
      device_type: this.#choose(['android', 'iOS']),
      ip: `${1 + this.#int(223)}.${this.#int(256)}.${this.#int(256)}.${this.#int(256)}`,
      locale: this.#choose(['RU', 'US', 'DE', 'BR']),
      device_id: `${100 + this.#int(900)}-${10 + this.#int(90)}-${1000 + this.#int(9000)}`,
      timestamp: String(Math.floor(Date.now() / 1000)),
    }
  }

  #deep(): string {
    const depth = 1000 + this.#int(99_000)
    switch (this.#int(3)) {
      case 0:
        // an array nested 1k–100k deep: JSON, but not an object
        return '['.repeat(depth) + ']'.repeat(depth)
      case 1: {
        // a complete event whose device_type is an object nested that deep: invalid_field
        const event = this.#event()
        const text = JSON.stringify({ ...event, device_type: '§' })
        return text.replace('"§"', '{"a":'.repeat(depth) + '1' + '}'.repeat(depth))
      }
      default: {
        // objects nested up to 60k deep (under the broker's 1 MB), no required field at the top: missing_fields
        const objects = Math.min(depth, 60_000)
        return '{"user_id":'.repeat(objects) + '"u"' + '}'.repeat(objects)
      }
    }
  }

  /**
   * Strings of quotes, backslashes, control characters and non-ASCII text that make the record
   * 100 KB–900 KB (the broker takes up to 1 MB), in events that are invalid otherwise.
   */
  #huge(): string {
    const target = 100_000 + this.#int(800_000)
    const alphabet = ['a', '"', '\\', '\u0001', '\n', 'é', '€', '😀', '\u0000', ' ']
    const piece = Array.from({ length: 64 }, () => this.#choose(alphabet)).join('')
    const huge = piece.repeat(Math.max(1, Math.floor(target / Buffer.byteLength(JSON.stringify(piece)))))
    const event = this.#event()
    const field = this.#choose(FIELDS)
    event[field] = huge
    // a huge but well-typed field is valid on its own: then another field goes missing
    if (field !== 'ip' && field !== 'timestamp') delete event[this.#choose(FIELDS.filter((f) => f !== field))]
    return JSON.stringify(event)
  }

  #wrongTypes(): Record<string, unknown> {
    const event = this.#event()
    const wrong: unknown[] = [0, 42, -1, 3.14, true, false, [], ['android'], {}, { value: 'x' }, [[[]]]]
    const wrongTimestamp: unknown[] = [true, false, [], {}, 'soon', '12:00', 'NaN', 'Infinity', '1694479551.5.1', '0x64FF', ' ', '١٦٩٤٤٧٩٥٥١']
    const spoiled = 1 + this.#int(3)
    for (let i = 0; i < spoiled; i++) {
      const field = this.#choose(FIELDS)
      if (field === 'timestamp') event.timestamp = this.#choose(wrongTimestamp)
      else if (field === 'ip') event.ip = this.#choose([...wrong, '999.1.1.1', '1.2.3', '::g', '1.2.3.4.5', 'localhost'])
      else event[field] = this.#choose(wrong)
    }
    return event
  }

  /**
   * `__proto__` and `constructor` keys carrying the required fields: a validator that reads
   * inherited properties (or a merge that pollutes a prototype) would take these for valid events.
   */
  #prototypeKeys(): string {
    const event = this.#event()
    const inner = JSON.stringify(event)
    const missing = this.#choose(FIELDS)
    const rest = { ...event }
    delete rest[missing]
    const restText = JSON.stringify(rest).slice(1, -1)
    switch (this.#int(5)) {
      case 0:
        return `{"__proto__":${inner}}`
      case 1:
        return `{"__proto__":{"${missing}":${JSON.stringify(event[missing])}},${restText}}`
      case 2:
        return `{"constructor":{"prototype":${inner}},${restText}}`
      case 3:
        return `{${restText},"constructor":{"prototype":{"${missing}":${JSON.stringify(event[missing])}}},"__proto__":{"__proto__":${inner}}}`
      default:
        return `{"hasOwnProperty":1,"toString":"x","valueOf":[],${restText},"__proto__":null}`
    }
  }

  /** A complete event with bytes no UTF-8 decoder may accept, inside a string value: a lenient decoder would see a valid event. */
  #invalidUtf8(): Buffer {
    const bad = this.#choose([[0xff], [0xfe], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80]])
    const event = this.#event()
    const field = this.#choose(['user_id', 'locale', 'device_id', 'device_type'] as const)
    const text = JSON.stringify({ ...event, [field]: `${String(event[field])}§` })
    const [before, after] = text.split('§') as [string, string]
    return Buffer.concat([Buffer.from(before), Buffer.from(bad), Buffer.from(after)])
  }

  #int(n: number): number {
    return Math.floor(this.#random() * n)
  }

  #choose<T>(items: readonly T[]): T {
    return items[this.#int(items.length)]!
  }

  #pick(weighted: [MalformedKind, number][]): MalformedKind {
    let r = this.#random() * weighted.reduce((n, [, w]) => n + w, 0)
    for (const [kind, w] of weighted) if ((r -= w) < 0) return kind
    return weighted[0]![0]
  }

  #hex(digits: number): string {
    let s = ''
    for (let i = 0; i < digits; i++) s += this.#int(16).toString(16)
    return s
  }
}
