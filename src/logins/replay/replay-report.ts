import { isUtf8 } from 'node:buffer'
import { maskIp } from '../core/mask-ip.ts'
import { pseudonymiseDeviceId } from '../core/pseudonymise.ts'
import { transformLogin } from '../core/transform-login.ts'
import type { LoginRules } from '../core/login-event.ts'
import { coordinatesText, UNREADABLE, type ParkedRecord } from './parked-record.ts'
import type { ReplayStep } from './replay-plan.ts'
import type { ReplayRequest } from './replay-request.ts'

const EXAMPLES_PER_CATEGORY = 3
const PREVIEW_CHARS = 240

export interface ReplayExample {
  at: string
  written: string
  replayOf?: string
  via?: 'source' | 'raw'
  unavailable?: string
  /** the event with its personal fields masked as the pipeline masks them */
  preview: string
  /** what the rules of this shell make of the bytes now */
  outcome?: string
}

export interface CategoryTally {
  selected: number
  viaSource: number
  viaRaw: number
  unavailable: number
  /** outcome under the current rules → count (sent or would-be-sent records only) */
  outcomes: Record<string, number>
  examples: ReplayExample[]
}

/** Counts of one run (or one dry run) of a replay, by error type or filter reason. */
export class ReplayTally {
  /** records of the parking topic looked at in this run */
  scanned = 0
  /** records that are no pipeline record (not counted as selected) */
  unreadable = 0
  /** parked outcomes of copies this replay sent in an earlier run (never sent again) */
  ownCopies = 0
  sent = 0
  readonly byCategory = new Map<string, CategoryTally>()

  get selected(): number {
    return this.#sum((c) => c.selected)
  }

  get unavailable(): number {
    return this.#sum((c) => c.unavailable)
  }

  #sum(f: (c: CategoryTally) => number): number {
    let n = 0
    for (const c of this.byCategory.values()) n += f(c)
    return n
  }

  /** Counts a scanned record that was not selected. */
  skip(parked: ParkedRecord): void {
    this.scanned++
    if (parked.category === UNREADABLE) this.unreadable++
  }

  /** Counts a selected record and what the replay does with it; `outcome` is the predicted outcome of its bytes. */
  add(parked: ParkedRecord, step: ReplayStep, preview?: () => { text: string; outcome?: string }): void {
    this.scanned++
    if (step.kind === 'own-copy') {
      this.ownCopies++
      return
    }
    let tally = this.byCategory.get(parked.category)
    if (!tally) this.byCategory.set(parked.category, (tally = { selected: 0, viaSource: 0, viaRaw: 0, unavailable: 0, outcomes: {}, examples: [] }))
    tally.selected++
    let outcome: string | undefined
    let text: string | undefined
    if (preview && (step.kind === 'send' || tally.examples.length < EXAMPLES_PER_CATEGORY)) {
      const shown = preview()
      outcome = shown.outcome
      text = shown.text
    }
    if (step.kind === 'send') {
      if (step.via === 'source') tally.viaSource++
      else tally.viaRaw++
      if (outcome) tally.outcomes[outcome] = (tally.outcomes[outcome] ?? 0) + 1
    } else {
      tally.unavailable++
    }
    if (text !== undefined && tally.examples.length < EXAMPLES_PER_CATEGORY) {
      tally.examples.push({
        at: coordinatesText(parked.at),
        written: new Date(parked.writtenMs).toISOString(),
        ...(step.kind === 'send' ? { replayOf: coordinatesText(step.replayOf), via: step.via } : { unavailable: step.why }),
        preview: text,
        ...(outcome ? { outcome } : {}),
      })
    }
  }

  toJSON() {
    return {
      scanned: this.scanned,
      selected: this.selected,
      sent: this.sent,
      unavailable: this.unavailable,
      own_copies: this.ownCopies,
      unreadable: this.unreadable,
      by_category: Object.fromEntries([...this.byCategory].sort(([a], [b]) => a.localeCompare(b)).map(([name, c]) => [name, {
        selected: c.selected, via_source: c.viaSource, via_raw: c.viaRaw, unavailable: c.unavailable, outcomes: c.outcomes, examples: c.examples,
      }])),
    }
  }
}

/** What the login rules of this shell make of the bytes: `processed`, `filtered:<reason>` or `error:<type>`. */
export function predictOutcome(bytes: Buffer | undefined, nowMs: number, rules: LoginRules): string {
  const outcome = transformLogin(bytes === undefined ? undefined : Buffer.from(bytes), nowMs, rules)
  return outcome.kind === 'processed' ? 'processed' : outcome.kind === 'filtered' ? `filtered:${outcome.reason}` : `error:${outcome.errorType}`
}

/**
 * An event for people to look at: `ip` masked and `device_id` pseudonymised as the pipeline
 * does it (or hidden without a hash key). Bytes that are no JSON object are shown as text with
 * anything that looks like an IPv4 address or a device id masked, cut to a few hundred
 * characters; bytes that are not UTF-8 only by their size.
 */
export function maskedPreview(bytes: Buffer | undefined, hashKey?: string): string {
  if (bytes === undefined || bytes.length === 0) return '(no value)'
  if (!isUtf8(bytes)) return `(${bytes.length} bytes, not UTF-8)`
  const text = bytes.toString('utf8')
  let event: unknown
  try {
    event = JSON.parse(text)
  } catch {
    return cut(maskText(text))
  }
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return cut(maskText(text))
  return cut(JSON.stringify(maskEvent(event as Record<string, unknown>, hashKey)))
}

/** A filtered event as cleaned-data holds it is already masked; shown as it is. */
export function eventPreview(event: unknown): string {
  return cut(JSON.stringify(event))
}

function maskEvent(event: Record<string, unknown>, hashKey?: string): Record<string, unknown> {
  const out = { ...event }
  if (Object.hasOwn(out, 'ip')) out.ip = typeof out.ip === 'string' ? (maskIp(out.ip) ?? '(not an address, hidden)') : '(hidden)'
  if (Object.hasOwn(out, 'device_id')) {
    out.device_id = typeof out.device_id === 'string' && hashKey ? pseudonymiseDeviceId(hashKey, out.device_id) : '(hidden)'
  }
  return out
}

function maskText(text: string): string {
  return text
    .replace(/\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}\b/g, '$1.xxx')
    .replace(/("device_id"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\s]+)/g, '$1"(hidden)"')
    .replace(/\b([0-9a-f]{1,4}(?::[0-9a-f]{1,4}){2}):[0-9a-f:.]+/gi, '$1:xxxx')
}

const cut = (text: string) => (text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text)

/** A note per category on what replaying it can achieve. */
export function categoryNote(role: ReplayRequest['role'], category: string): string {
  if (role === 'errors') {
    return `replaying ${category} re-sends the same bytes: they fail again as ${category} unless the rules changed ` +
      '(a corrected producer does not change events already written)'
  }
  if (category === 'app_version') return 'processed if ALLOWED_APP_VERSIONS of the processor now includes their version'
  if (category === 'stale') return 'these events are older now than when filtered: stale again unless MAX_MESSAGE_AGE of the processor allows their age (0 turns the check off)'
  return ''
}

/** The dry-run report: counts by type or reason, where the bytes come from, examples, and what the rules make of them now. */
export function formatDryRun(request: ReplayRequest, tally: ReplayTally, resumedAfter: number): string {
  const what = request.role === 'errors' ? 'error type' : 'reason'
  let out = `dry run of replay ${request.id}: ${request.topic} → ${request.target}` +
    `${request.categories.length ? `, ${what} ${request.categories.join(', ')}` : ''}` +
    `${request.sinceMs !== undefined ? `, written since ${new Date(request.sinceMs).toISOString()}` : ''}` +
    `${request.untilMs !== undefined ? `, until ${new Date(request.untilMs).toISOString()}` : ''}` +
    `${request.limit !== undefined ? `, at most ${request.limit}` : ''}\n`
  if (resumedAfter > 0) out += `${resumedAfter} records of ${request.topic} were handled by earlier runs of this replay and are not looked at again\n`
  const byCategory = [...tally.byCategory].sort(([a], [b]) => a.localeCompare(b))
  for (const [category, c] of byCategory) {
    out += `\n${what} ${category}: ${c.selected} selected: ${c.viaSource + c.viaRaw} would be sent (${c.viaSource} from ${request.role === 'errors' ? 'the source topic' : 'their originals'}` +
      `${request.role === 'errors' ? `, ${c.viaRaw} from the error record's raw payload` : ''}), ${c.unavailable} unavailable\n`
    const outcomes = Object.entries(c.outcomes).sort((a, b) => b[1] - a[1])
    if (outcomes.length) out += `  under the rules of this shell they would now be: ${outcomes.map(([o, n]) => `${o} ${n}`).join(', ')}\n`
    const note = categoryNote(request.role, category)
    if (note) out += `  note: ${note}\n`
    if (c.unavailable > 0 && request.role === 'cleaned') out += `  ${c.unavailable} whose original is gone from the source topic cannot be replayed: cleaned-data holds pseudonymised events only\n`
    for (const e of c.examples) {
      out += `  e.g. ${e.at} written ${e.written}${e.replayOf ? ` ← ${e.replayOf} (${e.via === 'raw' ? 'raw payload' : 'original'})` : ` unavailable: ${e.unavailable}`}${e.outcome ? ` → ${e.outcome}` : ''}\n       ${e.preview}\n`
    }
  }
  if (tally.ownCopies) out += `\n${tally.ownCopies} records are outcomes of copies this replay already sent; they are not sent again\n`
  if (tally.unreadable) out += `${tally.unreadable} records of ${request.topic} are not pipeline records and are never selected\n`
  out += `\n${tally.selected} selected, ${tally.selected - tally.unavailable} would be sent, ${tally.unavailable} unavailable (nothing sent: dry run)\n`
  return out
}

/** The last line of a run. */
export function formatSummary(request: ReplayRequest, tally: ReplayTally): string {
  return `replay ${request.id}: ${tally.selected} selected, ${tally.sent} sent to ${request.target}, ${tally.unavailable} unavailable` +
    `${tally.ownCopies ? `, ${tally.ownCopies} outcomes of its own copies skipped` : ''}`
}
