import { MAX_FUTURE_SECONDS } from './epoch-seconds.ts'
import { maskIp } from './mask-ip.ts'
import { pseudonymiseDeviceIdBytes } from './pseudonymise.ts'
import { cleanedParts, loginTime, staleDetail, versionDetail } from './transform-login.ts'
import type { FilterReason, LoginRules } from './login-event.ts'

/**
 * transformLogin for the common record, read and written as bytes: a flat JSON object of ASCII
 * strings without escapes, canonical integers, booleans and nulls, every required field valid.
 * It writes what transformLogin's `value` and `userId` are as UTF-8 — the same bytes — without
 * JSON.parse, an object per event or JSON.stringify. Anything else (a rule broken, an escape,
 * non-ASCII text, a nested value, a float, a key that JSON.stringify would move or a key twice)
 * is not handled here: the caller gives the record to transformLogin, which decides it.
 *
 * Why the bytes come out the same: JSON.stringify writes an object's keys in the order they were
 * first seen, except integer-like keys, which go first (a key starting with a digit is refused
 * here); a string without escapes, control characters or non-ASCII characters is written as it
 * was read; an integer written canonically (no leading zero, no sign on zero, at most 15 digits) is
 * written as it was read; whitespace between tokens is dropped. transformLogin replaces `ip`,
 * `device_id` and `timestamp` in place and sets `login_time` (in place when the event has one, last
 * when it does not): so does this.
 */

/** What a handled record became; its output was written. */
export interface FastOutcome {
  kind: 'processed' | 'filtered'
  reason: FilterReason | undefined
  deviceType: string
  locale: string
  appVersion: string
  /** epoch seconds */
  timestamp: number
  /** where the user id's bytes are in the record's (the output's key) */
  userStart: number
  userEnd: number
}

/** Where the output goes: text and byte ranges appended as UTF-8. */
export interface Utf8Sink {
  text(text: string): void
  /** text known to be ASCII */
  ascii(text: string): void
  /** the bytes source[start, end) */
  bytes(source: Buffer, start: number, end: number): void
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const MINUS = 0x2d
const ZERO = 0x30
const NINE = 0x39
const OPEN = 0x7b
const CLOSE = 0x7d

const STRING = 1
const NUMBER = 2
const LITERAL = 3

/** more members than this: left to transformLogin */
const MAX_MEMBERS = 32
/** per member: key start, key end (inside the quotes), value start, value end (quotes included), type */
const spans = new Int32Array(5 * MAX_MEMBERS)

// members' indices of the fields the rules read (-1: absent)
const USER_ID = 0
const IP = 1
const DEVICE_ID = 2
const APP_VERSION = 3
const DEVICE_TYPE = 4
const TIMESTAMP = 5
const LOCALE = 6
const LOGIN_TIME = 7
const at = new Int32Array(8)

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= ZERO && c <= NINE
}

/** The index of the closing quote of a string whose text starts at `i`; -1 for an escape, a control or non-ASCII character, or no end. */
function stringEnd(b: Buffer, i: number, end: number): number {
  for (; i < end; i++) {
    const c = b[i]!
    if (c === QUOTE) return i
    if (c < 0x20 || c >= 0x80 || c === BACKSLASH) return -1
  }
  return -1
}

const NAMES = ['user_id', 'ip', 'device_id', 'app_version', 'device_type', 'timestamp', 'locale', 'login_time'].map((name) => Buffer.from(name, 'latin1'))

/** True when b[start, start + word.length) is `word`'s bytes (the caller knows they fit). */
function isWord(b: Buffer, start: number, word: Buffer): boolean {
  for (let i = 0; i < word.length; i++) if (b[start + i] !== word[i]) return false
  return true
}

/** Which of the rules' fields a key names (its bytes b[start, end)), or -1. */
function fieldOf(b: Buffer, start: number, end: number): number {
  const length = end - start
  for (let field = 0; field < NAMES.length; field++) {
    const name = NAMES[field]!
    if (name.length === length && isWord(b, start, name)) return field
  }
  return -1
}

/** True when member m's key is the same as an earlier member's. */
function repeatsKey(b: Buffer, m: number): boolean {
  const start = spans[5 * m]!
  const length = spans[5 * m + 1]! - start
  next: for (let k = 0; k < m; k++) {
    const other = spans[5 * k]!
    if (spans[5 * k + 1]! - other !== length) continue
    for (let i = 0; i < length; i++) if (b[start + i] !== b[other + i]) continue next
    return true
  }
  return false
}

const TRUE = Buffer.from('true')
const FALSE = Buffer.from('false')
const NULL = Buffer.from('null')

/**
 * The members of the object in b[start, end), into `spans`; their count, or -1 when the text is
 * not one this path handles (which includes text that is not JSON).
 */
function scan(b: Buffer, start: number, end: number): number {
  let i = start
  while (i < end && isSpace(b[i]!)) i++
  if (b[i] !== OPEN) return -1
  i++
  let m = 0
  for (;;) {
    while (i < end && isSpace(b[i]!)) i++
    if (b[i] !== QUOTE || m === MAX_MEMBERS) return -1
    const keyStart = i + 1
    const keyEnd = stringEnd(b, keyStart, end)
    // an integer-like key is one JSON.stringify writes first: not this path's
    if (keyEnd < 0 || (keyEnd > keyStart && isDigit(b[keyStart]))) return -1
    i = keyEnd + 1
    while (i < end && isSpace(b[i]!)) i++
    if (b[i] !== COLON) return -1
    i++
    while (i < end && isSpace(b[i]!)) i++
    const valueStart = i
    const c = b[i]
    let type: number
    if (c === QUOTE) {
      const close = stringEnd(b, i + 1, end)
      if (close < 0) return -1
      i = close + 1
      type = STRING
    } else if (c === MINUS || isDigit(c)) {
      if (c === MINUS) i++
      const digits = i
      if (b[i] === ZERO) i++
      else while (i < end && isDigit(b[i])) i++
      const next = b[i]
      // no digits, -0, a fraction, an exponent, a leading zero, or more digits than a safe integer is sure to have
      if (i === digits || (c === MINUS && b[digits] === ZERO) || i - digits > 15) return -1
      if (next === 0x2e || next === 0x65 || next === 0x45 || isDigit(next)) return -1
      type = NUMBER
    } else if ((c === 0x74 || c === 0x6e) && end - i >= 4 && isWord(b, i, c === 0x74 ? TRUE : NULL)) {
      i += 4
      type = LITERAL
    } else if (c === 0x66 && end - i >= 5 && isWord(b, i, FALSE)) {
      i += 5
      type = LITERAL
    } else {
      return -1
    }
    const s = 5 * m
    spans[s] = keyStart
    spans[s + 1] = keyEnd
    spans[s + 2] = valueStart
    spans[s + 3] = i
    spans[s + 4] = type
    if (repeatsKey(b, m)) return -1
    m++
    while (i < end && isSpace(b[i]!)) i++
    if (b[i] === COMMA) {
      i++
      continue
    }
    if (b[i] !== CLOSE) return -1
    i++
    break
  }
  while (i < end && isSpace(b[i]!)) i++
  return i === end ? m : -1
}

/** The text of a string member (without its quotes); ASCII, as scan checked. */
function text(b: Buffer, m: number): string {
  return b.toString('latin1', spans[5 * m + 2]! + 1, spans[5 * m + 3]! - 1)
}

/**
 * The text of a short string member of few distinct values (a device type, a locale, an app
 * version): the string made for the same bytes before. Up to 7 ASCII bytes make a number (a
 * leading 1, then 7 bits a byte: below 2^53), the key of the strings made; a longer text, or one
 * once the map is full, is made anew.
 */
function category(b: Buffer, m: number, made: Map<number, string>): string {
  const start = spans[5 * m + 2]! + 1
  const end = spans[5 * m + 3]! - 1
  if (end - start > 7) return text(b, m)
  let code = 1
  for (let i = start; i < end; i++) code = code * 128 + b[i]!
  let known = made.get(code)
  if (known === undefined) {
    known = text(b, m)
    if (made.size < CATEGORY_STRINGS) made.set(code, known)
  }
  return known
}
const CATEGORY_STRINGS = 256
const deviceTypes = new Map<number, string>()
const locales = new Map<number, string>()
const appVersions = new Map<number, string>()

/** A string member that transformLogin takes as present and not blank. */
function isFilledString(b: Buffer, m: number): boolean {
  // not blank: its first character is not whitespace or a control character (transformLogin's isBlank)
  return m >= 0 && spans[5 * m + 4] === STRING && spans[5 * m + 3]! - spans[5 * m + 2]! > 2 && b[spans[5 * m + 2]! + 1]! > 0x20
}

/** The epoch seconds of the timestamp member as epochSeconds reads them, or -1. */
function seconds(b: Buffer, m: number): number {
  if (m < 0) return -1
  let from = spans[5 * m + 2]!
  let to = spans[5 * m + 3]!
  const type = spans[5 * m + 4]
  if (type === STRING) {
    from++
    to--
    if (to === from || to - from > 15) return -1
  } else if (type !== NUMBER || b[from] === MINUS) {
    return -1
  }
  let value = 0
  for (let i = from; i < to; i++) {
    const c = b[i]!
    if (!isDigit(c)) return -1
    value = value * 10 + (c - ZERO)
  }
  return value
}

/**
 * The rules applied to the record value b[start, end), its output value written to `out` (the key
 * is the user id's bytes, where the outcome says); undefined, with nothing written, when the
 * record is not one this path handles.
 */
export function transformLoginBytes(b: Buffer, start: number, end: number, nowMs: number, rules: LoginRules, out: Utf8Sink): FastOutcome | undefined {
  const members = scan(b, start, end)
  if (members < 0) return undefined
  at.fill(-1)
  for (let m = 0; m < members; m++) {
    const field = fieldOf(b, spans[5 * m]!, spans[5 * m + 1]!)
    if (field >= 0) at[field] = m
  }
  if (!isFilledString(b, at[USER_ID]!) || !isFilledString(b, at[IP]!) || !isFilledString(b, at[DEVICE_ID]!) || !isFilledString(b, at[APP_VERSION]!) ||
    !isFilledString(b, at[DEVICE_TYPE]!) || !isFilledString(b, at[LOCALE]!)) return undefined
  const timestamp = seconds(b, at[TIMESTAMP]!)
  const nowSeconds = nowMs / 1000
  if (timestamp < 0 || timestamp > nowSeconds + MAX_FUTURE_SECONDS) return undefined
  const maskedIp = maskIp(text(b, at[IP]!))
  if (maskedIp === undefined) return undefined

  const appVersion = category(b, at[APP_VERSION]!, appVersions)
  const age = nowSeconds - timestamp
  // rules 3 and 4, as transformLogin applies them: a filtered event's output is its cleaned-data record
  let reason: FastOutcome['reason']
  let parts: [string, string] | undefined
  if (rules.maxMessageAgeSeconds > 0 && age > rules.maxMessageAgeSeconds) {
    reason = 'stale'
    parts = cleanedParts(reason, staleDetail(age, rules))
  } else if (!rules.allowedAppVersions.has(appVersion)) {
    reason = 'app_version'
    parts = cleanedParts(reason, versionDetail(appVersion, rules))
  }

  if (parts) out.text(parts[0])
  const id = at[DEVICE_ID]!
  const device = pseudonymiseDeviceIdBytes(rules.hashKey, b, spans[5 * id + 2]! + 1, spans[5 * id + 3]! - 1)
  const time = loginTime(timestamp)
  for (let m = 0; m < members; m++) {
    const s = 5 * m
    out.ascii(m === 0 ? '{' : ',')
    out.bytes(b, spans[s]! - 1, spans[s + 1]! + 1)
    out.ascii(':')
    if (m === at[IP]) out.ascii(`"${maskedIp}"`)
    else if (m === id) out.ascii(`"${device}"`)
    else if (m === at[TIMESTAMP]) out.ascii(String(timestamp))
    else if (m === at[LOGIN_TIME]) out.ascii(`"${time}"`)
    else out.bytes(b, spans[s + 2]!, spans[s + 3]!)
  }
  out.ascii(at[LOGIN_TIME]! < 0 ? `,"login_time":"${time}"}` : '}')
  if (parts) out.text(parts[1])
  const user = at[USER_ID]!
  return {
    kind: reason === undefined ? 'processed' : 'filtered',
    reason,
    deviceType: category(b, at[DEVICE_TYPE]!, deviceTypes),
    locale: category(b, at[LOCALE]!, locales),
    appVersion,
    timestamp,
    userStart: spans[5 * user + 2]! + 1,
    userEnd: spans[5 * user + 3]! - 1,
  }
}
