/**
 * The login rules exactly as they were before the hot path was optimised (transform-login.ts,
 * mask-ip.ts, pseudonymise.ts, epoch-seconds.ts of that time, in one file and never to be
 * changed): the oracle that transform-login.pinned.test.ts compares every optimised output with,
 * byte for byte. A change of the rules themselves changes both files and the pinned digest.
 */
import { isUtf8 } from 'node:buffer'
import { createHmac } from 'node:crypto'
import { isIPv6 } from 'node:net'
import { REQUIRED_FIELDS, type FailedLogin, type LoginOutcome, type LoginRules } from './login-event.ts'

const MAX_FUTURE_SECONDS = 86_400

export function referenceTransformLogin(raw: Buffer | undefined, nowMs: number, rules: LoginRules): LoginOutcome {
  // Rule 1: UTF-8 JSON object
  if (raw === undefined || raw.length === 0) return failed('invalid_json', 'the record has no value', [], null)
  if (!isUtf8(raw)) return failed('invalid_json', 'the value is not UTF-8 text', [], null)
  let event: unknown
  try {
    event = JSON.parse(raw.toString('utf8'))
  } catch (error) {
    return failed('invalid_json', `the value is not JSON: ${(error as Error).message}`, [], null)
  }
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    return failed('invalid_json', `the value is JSON but not an object: ${event === null ? 'null' : Array.isArray(event) ? 'an array' : `a ${typeof event}`}`, [], null)
  }
  const fields = event as Record<string, unknown>
  const userId = typeof fields.user_id === 'string' && !isBlank(fields.user_id) ? fields.user_id : null

  // Rule 2: present, non-empty, right type
  let missing: string[] | undefined
  for (const name of REQUIRED_FIELDS) {
    const value = Object.hasOwn(fields, name) ? fields[name] : undefined
    if (value === undefined || value === null || (typeof value === 'string' && isBlank(value))) (missing ??= []).push(name)
  }
  if (missing) return failed('missing_fields', `missing or empty: ${missing.join(', ')}`, missing, userId)

  let invalid: string[] | undefined
  let reasons: string[] | undefined
  const bad = (name: string, why: string) => {
    ;(invalid ??= []).push(name)
    ;(reasons ??= []).push(`${name} ${why}`)
  }
  const nowSeconds = nowMs / 1000
  let timestamp: number | undefined
  let maskedIp: string | undefined
  for (const name of REQUIRED_FIELDS) {
    const value = fields[name]
    if (name === 'timestamp') {
      timestamp = epochSeconds(value)
      if (timestamp === undefined) bad(name, 'must be epoch seconds in decimal digits (string or number)')
      else if (timestamp > nowSeconds + MAX_FUTURE_SECONDS) bad(name, 'is more than a day in the future (milliseconds instead of seconds?)')
    } else if (typeof value !== 'string') {
      bad(name, `must be a string, not ${describeType(value)}`)
    } else if (name === 'ip') {
      maskedIp = maskIp(value)
      if (maskedIp === undefined) bad(name, 'is not an IPv4 or IPv6 address')
    }
  }
  if (invalid) return failed('invalid_field', `invalid: ${reasons!.join('; ')}`, invalid, userId)

  // Rule 5's transformation, applied to filtered events too: cleaned-data never holds raw PII.
  const appVersion = fields.app_version as string
  fields.ip = maskedIp
  fields.device_id = pseudonymiseDeviceId(rules.hashKey, fields.device_id as string)
  fields.timestamp = timestamp
  fields.login_time = new Date(timestamp! * 1000).toISOString()
  const value = JSON.stringify(fields)
  const deviceType = fields.device_type as string
  const locale = fields.locale as string

  // Rule 3: stale
  const age = nowSeconds - timestamp!
  if (rules.maxMessageAgeSeconds > 0 && age > rules.maxMessageAgeSeconds) {
    const detail = `event is ${Math.floor(age)} s old; MAX_MESSAGE_AGE is ${rules.maxMessageAgeSeconds} s`
    return { kind: 'filtered', reason: 'stale', value: cleanedRecord('stale', value, detail), userId: userId!, deviceType, locale, appVersion, timestamp: timestamp! }
  }
  // Rule 4: app version
  if (!rules.allowedAppVersions.has(appVersion)) {
    const detail = `app_version ${JSON.stringify(appVersion)} is not one of ALLOWED_APP_VERSIONS (${[...rules.allowedAppVersions].join(', ')})`
    return { kind: 'filtered', reason: 'app_version', value: cleanedRecord('app_version', value, detail), userId: userId!, deviceType, locale, appVersion, timestamp: timestamp! }
  }
  return { kind: 'processed', value, userId: userId!, deviceType, locale, appVersion, timestamp: timestamp! }
}

function cleanedRecord(reason: string, event: string, detail: string): string {
  return `{"reason":"${reason}","event":${event},"detail":${JSON.stringify(detail)}}`
}

function failed(errorType: FailedLogin['errorType'], error: string, fields: string[], userId: string | null): FailedLogin {
  return { kind: 'failed', errorType, error, fields, userId }
}

function isBlank(text: string): boolean {
  return text.length === 0 || (text.charCodeAt(0) <= 32 && text.trim().length === 0)
}

function describeType(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

function maskIp(text: string): string | undefined {
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
function ipv4Prefix(text: string): string | undefined {
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
function ipv6Groups(text: string): number[] | undefined {
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

function pseudonymiseDeviceId(key: string | Buffer, deviceId: string): string {
  return createHmac('sha256', key).update(deviceId).digest('hex')
}

function epochSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string' || value.length === 0 || value.length > 15) return undefined
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 48 || c > 57) return undefined
  }
  return Number(value)
}
