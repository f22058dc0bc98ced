import { transformLogin } from './transform-login.ts'
import { transformLoginBytes, type Utf8Sink } from './transform-login-bytes.ts'
import { OutcomeCounts } from './outcome-counts.ts'
import type { FailedLogin, LoginRules } from './login-event.ts'

/**
 * The login rules over a run of records, in a form that crosses to another thread cheaply: record
 * values in as one block of bytes, outputs out as one block of UTF-8 (each output's value, then its
 * key), plus typed arrays of what each record became. The common record (a flat event of ASCII
 * text, every rule met) goes through transformLoginBytes, which reads and writes its bytes; every
 * other record through transformLogin. Either way an output made here is byte for byte the one
 * transformLogin makes (rules-batch.test.ts, transform-login-bytes.test.ts).
 */

/** The values of consecutive records, one after the other; bounds[2i], bounds[2i + 1] = the i-th value's [start, end), -1 for no value. */
export interface PackedValues {
  bytes: Uint8Array<ArrayBuffer>
  bounds: Int32Array<ArrayBuffer>
}

/** What a record became (RulesResult.kinds). */
export const PROCESSED = 0
export const FILTERED = 1
export const FAILED = 2

/** The rules' outcomes for a run of packed records, in their order. */
export interface RulesResult {
  kinds: Uint8Array<ArrayBuffer>
  /** UTF-8: per processed or filtered record, its output value, then its key (the user id) */
  bytes: Uint8Array<ArrayBuffer>
  /** per record: value start, value end (= key start), key end (0, 0, 0 for a failed record) */
  bounds: Int32Array<ArrayBuffer>
  /** per processed record: the event time in epoch seconds (0 for the others) */
  timestamps: Float64Array<ArrayBuffer>
  /** per failed record, in their order: the outcome (it names the error; the record's raw value stays with the caller) */
  failures: FailedLogin[]
  /** the outcomes counted, as OutcomeCounts counts them */
  counts: OutcomeCounts
}

/** What a rules thread needs to apply the rules: LoginRules, as it crosses to a thread (a Set does not need to, an array is plainer). */
export interface PortableRules {
  hashKey: string
  maxMessageAgeSeconds: number
  allowedAppVersions: string[]
}

export function portableRules(rules: LoginRules): PortableRules {
  return { hashKey: rules.hashKey, maxMessageAgeSeconds: rules.maxMessageAgeSeconds, allowedAppVersions: [...rules.allowedAppVersions] }
}

export function loginRules(rules: PortableRules): LoginRules {
  return { hashKey: rules.hashKey, maxMessageAgeSeconds: rules.maxMessageAgeSeconds, allowedAppVersions: new Set(rules.allowedAppVersions) }
}

/** The values of records[from, to) packed in one buffer of their own (transferable: not a slice of Buffer's pool). */
export function packValues(records: readonly { value?: Uint8Array | null | undefined }[], from = 0, to = records.length): PackedValues {
  let total = 0
  for (let i = from; i < to; i++) total += records[i]!.value?.length ?? 0
  const bytes = new Uint8Array(total)
  const bounds = new Int32Array(2 * (to - from))
  let position = 0
  for (let i = from, j = 0; i < to; i++, j += 2) {
    const value = records[i]!.value
    if (value === undefined || value === null) {
      bounds[j] = bounds[j + 1] = -1
      continue
    }
    bytes.set(value, position)
    bounds[j] = position
    position += value.length
    bounds[j + 1] = position
  }
  return { bytes, bounds }
}

/** transformLogin over packed values at the time `nowMs`, the outputs written as UTF-8 into one buffer. */
export function applyRules(packed: PackedValues, nowMs: number, rules: LoginRules): RulesResult {
  const n = packed.bounds.length / 2
  const input = Buffer.from(packed.bytes.buffer, packed.bytes.byteOffset, packed.bytes.byteLength)
  const kinds = new Uint8Array(n)
  const bounds = new Int32Array(3 * n)
  const timestamps = new Float64Array(n)
  const failures: FailedLogin[] = []
  const counts = new OutcomeCounts()
  // outputs are about as long as their inputs (a masked IP and a pseudonym for the raw ones, plus login_time)
  const out = new Utf8Out(Math.max(4096, Math.ceil(input.length * 1.5) + 64 * n))
  for (let i = 0; i < n; i++) {
    const start = packed.bounds[2 * i]!
    const valueStart = out.position
    // the common record as bytes; transformLogin for the others (and the record without a value)
    const fast = start < 0 ? undefined : transformLoginBytes(input, start, packed.bounds[2 * i + 1]!, nowMs, rules, out)
    if (fast !== undefined) {
      counts.addValid(fast.kind, fast.reason, fast.deviceType, fast.locale, fast.appVersion)
      kinds[i] = fast.kind === 'processed' ? PROCESSED : FILTERED
      if (fast.kind === 'processed') timestamps[i] = fast.timestamp
      bounds[3 * i] = valueStart
      bounds[3 * i + 1] = out.position
      out.bytes(input, fast.userStart, fast.userEnd)
      bounds[3 * i + 2] = out.position
      continue
    }
    const raw = start < 0 ? undefined : input.subarray(start, packed.bounds[2 * i + 1]!)
    const outcome = transformLogin(raw, nowMs, rules)
    counts.add(outcome)
    if (outcome.kind === 'failed') {
      kinds[i] = FAILED
      failures.push(outcome)
      continue
    }
    kinds[i] = outcome.kind === 'processed' ? PROCESSED : FILTERED
    if (outcome.kind === 'processed') timestamps[i] = outcome.timestamp
    bounds[3 * i] = valueStart
    out.text(outcome.value)
    bounds[3 * i + 1] = out.position
    out.text(outcome.userId)
    bounds[3 * i + 2] = out.position
  }
  return { kinds, bytes: out.written(), bounds, timestamps, failures, counts }
}

/** UTF-8 written one after the other into one growing buffer of its own (transferable). */
class Utf8Out implements Utf8Sink {
  position = 0
  #buffer: Buffer<ArrayBuffer>

  constructor(size: number) {
    this.#buffer = Buffer.from(new ArrayBuffer(size))
  }

  text(text: string): void {
    // at most 3 bytes per UTF-16 unit
    this.#room(text.length * 3)
    this.position += this.#buffer.write(text, this.position, 'utf8')
  }

  ascii(text: string): void {
    this.#room(text.length)
    // a character or two byte by byte; longer text in one native write
    if (text.length > 2) {
      this.position += this.#buffer.write(text, this.position, 'latin1')
      return
    }
    this.#buffer[this.position++] = text.charCodeAt(0)
    if (text.length === 2) this.#buffer[this.position++] = text.charCodeAt(1)
  }

  bytes(source: Buffer, start: number, end: number): void {
    this.#room(end - start)
    if (end - start > 64) {
      this.position += source.copy(this.#buffer, this.position, start, end)
      return
    }
    const buffer = this.#buffer
    let p = this.position
    for (let i = start; i < end; i++) buffer[p++] = source[i]!
    this.position = p
  }

  written(): Buffer<ArrayBuffer> {
    return this.#buffer.subarray(0, this.position)
  }

  /** grows the buffer when `bytes` more might not fit */
  #room(bytes: number): void {
    if (this.#buffer.length - this.position >= bytes) return
    const bigger = Buffer.from(new ArrayBuffer(Math.max(2 * this.#buffer.length, this.position + bytes)))
    this.#buffer.copy(bigger, 0, 0, this.position)
    this.#buffer = bigger
  }
}
