import { isUtf8 } from 'node:buffer'
import { epochSeconds, MAX_FUTURE_SECONDS } from './epoch-seconds.ts'
import { maskIp } from './mask-ip.ts'
import { pseudonymiseDeviceId } from './pseudonymise.ts'
import { REQUIRED_FIELDS, type FailedLogin, type LoginOutcome, type LoginRules } from './login-event.ts'

/**
 * The whole of the login rules (SPEC.md "Login events", rules 1–5, in that order) as one pure
 * function: raw bytes of a record value, the time, the rules → exactly one outcome.
 * Hot path: one JSON.parse per record; the parsed object is transformed in place (keeping the
 * field order and any own `__proto__` key as plain data) and serialised once.
 */
export function transformLogin(raw: Buffer | undefined, nowMs: number, rules: LoginRules): LoginOutcome {
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
  fields.login_time = loginTime(timestamp!)
  const value = JSON.stringify(fields)
  const deviceType = fields.device_type as string
  const locale = fields.locale as string

  // Rule 3: stale
  const age = nowSeconds - timestamp!
  if (rules.maxMessageAgeSeconds > 0 && age > rules.maxMessageAgeSeconds) {
    const detail = staleDetail(age, rules)
    return { kind: 'filtered', reason: 'stale', value: cleanedRecord('stale', value, detail), userId: userId!, deviceType, locale, appVersion, timestamp: timestamp! }
  }
  // Rule 4: app version
  if (!rules.allowedAppVersions.has(appVersion)) {
    const detail = versionDetail(appVersion, rules)
    return { kind: 'filtered', reason: 'app_version', value: cleanedRecord('app_version', value, detail), userId: userId!, deviceType, locale, appVersion, timestamp: timestamp! }
  }
  return { kind: 'processed', value, userId: userId!, deviceType, locale, appVersion, timestamp: timestamp! }
}

/** Rule 3's detail, for an event `age` seconds old. */
export function staleDetail(age: number, rules: LoginRules): string {
  return `event is ${Math.floor(age)} s old; MAX_MESSAGE_AGE is ${rules.maxMessageAgeSeconds} s`
}

/** Rule 4's detail. */
export function versionDetail(appVersion: string, rules: LoginRules): string {
  return `app_version ${JSON.stringify(appVersion)} is not one of ALLOWED_APP_VERSIONS (${[...rules.allowedAppVersions].join(', ')})`
}

// Events of a batch mostly share their second: its ISO text is made once, not once per event.
let lastSeconds = -1
let lastIso = ''
/** The `login_time` of an event at these epoch seconds. */
export function loginTime(seconds: number): string {
  if (seconds !== lastSeconds) {
    lastIso = new Date(seconds * 1000).toISOString()
    lastSeconds = seconds
  }
  return lastIso
}

function cleanedRecord(reason: string, event: string, detail: string): string {
  const [before, after] = cleanedParts(reason, detail)
  return before + event + after
}

/** The cleaned-data record's text before and after its event. */
export function cleanedParts(reason: string, detail: string): [string, string] {
  return [`{"reason":"${reason}","event":`, `,"detail":${JSON.stringify(detail)}}`]
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
