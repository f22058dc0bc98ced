import { LoginGenerator, seededRandom } from '../generate/login-generator.ts'
import type { LoginRules } from './login-event.ts'

/**
 * A seeded corpus of login record values that goes well beyond what the generator emits: odd
 * values of every field, extra fields, reordered, duplicate keys, escapes, not UTF-8, not JSON.
 * The optimised rules are compared on it with the reference, and the rules thread with the rules.
 */
export const NOW_S = 1_694_479_560
export const NOW = NOW_S * 1000
export const rulesList: LoginRules[] = [
  { hashKey: 'test-hash-key-0123456789', maxMessageAgeSeconds: 60, allowedAppVersions: new Set(['2.3.0']) },
  { hashKey: 'ключ ✓ with non-ASCII', maxMessageAgeSeconds: 0, allowedAppVersions: new Set(['2.3.0', '2.2.0', '3.0.0-beta']) },
  { hashKey: '', maxMessageAgeSeconds: 90, allowedAppVersions: new Set() },
]

const FIELDS = ['user_id', 'ip', 'device_id', 'app_version', 'device_type', 'timestamp', 'locale']
const ODD_VALUES: unknown[] = [
  null, '', ' ', '\t\n', 0, -1, 1.5, 1e21, 2 ** 53, '0', '00', '1694479551', '1694479551000', ' 1694479551', '9'.repeat(16),
  true, false, [], ['a'], {}, { a: 1 }, 'x'.repeat(300), 'é', '😀', '\u0000', '\u2028', '"quoted"', 'back\\slash', '__proto__',
  '1.2.3.4', '255.255.255.255', '256.1.1.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '::', '::1', '::ffff:10.1.2.3', '2001:db8::1',
  '2001:0db8:85a3:0000:0000:8a2e:0370:7334', 'fe80::1%eth0', '1:2:3:4:5:6:7:8:9', '::ffff:1.2.3', 'ABCD:ef01::', '1::2::3',
  NOW_S - 30, NOW_S - 61, NOW_S + 86_400, NOW_S + 86_401, String(NOW_S - 3600), '2.3.0', '2.2.0', 'android', 'iOS', 'RU',
]

/** A deterministic corpus: the generator's records (valid and spoiled) plus seeded mutations of them. */
export function corpus(size: number, seed: number): Buffer[] {
  const random = seededRandom(seed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
  const generator = new LoginGenerator(seed, 0.3)
  const out: Buffer[] = []
  for (let i = 0; i < size; i++) {
    const generated = generator.next(NOW_S - Math.floor(random() * 120))
    const raw = typeof generated.value === 'string' ? Buffer.from(generated.value) : generated.value
    const roll = random()
    if (roll < 0.5 || generated.kind !== 'valid') {
      out.push(raw)
      continue
    }
    const event = JSON.parse(raw.toString('utf8')) as Record<string, unknown>
    if (roll < 0.75) {
      // one or two fields get odd values, absent or reordered
      for (let n = 1 + Math.floor(random() * 2); n > 0; n--) {
        const field = pick(FIELDS)
        if (random() < 0.15) delete event[field]
        else event[field] = pick(ODD_VALUES)
      }
      out.push(Buffer.from(JSON.stringify(random() < 0.3 ? Object.fromEntries(Object.entries(event).reverse()) : event)))
    } else if (roll < 0.85) {
      // extra fields of every JSON type pass through
      event[pick(['extra', 'login_time', 'nested', 'ü', '__proto__', 'constructor', '0', '10'])] = pick(ODD_VALUES)
      out.push(Buffer.from(JSON.stringify(event)))
    } else if (roll < 0.9) {
      // text the serialiser writes differently from how it came: spaces, escapes, duplicate keys, numbers written long
      const text = raw.toString('utf8')
      out.push(Buffer.from(pick([
        text.replaceAll(',', ' ,\n '),
        text.replace('{', '{"user_id":"first",'),
        text.replace('"locale":"', '"locale":"\\u00e9\\/'),
        text.replace(/"timestamp":"(\d+)"/, '"timestamp":$1.0'),
        text.replace(/"timestamp":"(\d+)"/, '"timestamp":$1e0'),
        text.replace('{', '{"__proto__":{"x":1},'),
        `\uFEFF${text}`,
        ` ${text} `,
      ])))
    } else {
      // not a usable record at all
      out.push(pick([
        Buffer.alloc(0), Buffer.from('null'), Buffer.from('[]'), Buffer.from('"text"'), Buffer.from('42'),
        Buffer.from([0xff, 0xfe, 0x7b]), Buffer.from('{"user_id":'), Buffer.from('{}'), raw.subarray(0, raw.length >> 1),
      ]))
    }
  }
  return out
}
