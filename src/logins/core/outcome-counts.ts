import type { ErrorType, FilterReason, LoginOutcome } from './login-event.ts'
import type { OutcomeCountsRecord, SummaryRecord } from '../../record-formats.ts'

/**
 * Distinct values counted per category (device types, locales, app versions). These come from
 * the input, so a stream of made-up locales must not grow memory or the summary without bound.
 */
export const MAX_CATEGORY_VALUES = 100
export const OTHER_CATEGORY = '(other)'

/** Counts of outcomes, as the summary reports them. Categories count valid events (processed or filtered). */
export class OutcomeCounts {
  received = 0
  processed = 0
  readonly filtered: Record<FilterReason, number> = { stale: 0, app_version: 0 }
  readonly errors: Record<ErrorType, number> = { invalid_json: 0, missing_fields: 0, invalid_field: 0 }
  // Maps, not objects: an event's locale may well be "__proto__".
  readonly deviceTypes = new Map<string, number>()
  readonly locales = new Map<string, number>()
  readonly appVersions = new Map<string, number>()

  add(outcome: LoginOutcome): void {
    if (outcome.kind === 'failed') {
      this.received++
      this.errors[outcome.errorType]++
      return
    }
    this.addValid(outcome.kind, outcome.kind === 'filtered' ? outcome.reason : undefined, outcome.deviceType, outcome.locale, outcome.appVersion)
  }

  /** A valid event: processed, or filtered for `reason`. */
  addValid(kind: 'processed' | 'filtered', reason: FilterReason | undefined, deviceType: string, locale: string, appVersion: string): void {
    this.received++
    if (kind === 'processed') this.processed++
    else this.filtered[reason!]++
    bump(this.deviceTypes, deviceType, 1)
    bump(this.locales, locale, 1)
    bump(this.appVersions, appVersion, 1)
  }

  merge(other: OutcomeCounts): void {
    this.received += other.received
    this.processed += other.processed
    this.filtered.stale += other.filtered.stale
    this.filtered.app_version += other.filtered.app_version
    this.errors.invalid_json += other.errors.invalid_json
    this.errors.missing_fields += other.errors.missing_fields
    this.errors.invalid_field += other.errors.invalid_field
    for (const [k, n] of other.deviceTypes) bump(this.deviceTypes, k, n)
    for (const [k, n] of other.locales) bump(this.locales, k, n)
    for (const [k, n] of other.appVersions) bump(this.appVersions, k, n)
  }

  get filteredTotal(): number {
    return this.filtered.stale + this.filtered.app_version
  }

  get errorsTotal(): number {
    return this.errors.invalid_json + this.errors.missing_fields + this.errors.invalid_field
  }

  toJSON(): OutcomeCountsRecord {
    return {
      received: this.received,
      processed: this.processed,
      filtered: { ...this.filtered },
      errors: { ...this.errors },
      device_types: Object.fromEntries(this.deviceTypes),
      locales: Object.fromEntries(this.locales),
      app_versions: Object.fromEntries(this.appVersions),
    }
  }
}

function bump(counts: Map<string, number>, key: string, n: number): void {
  const seen = counts.get(key)
  if (seen !== undefined) counts.set(key, seen + n)
  else if (counts.size < MAX_CATEGORY_VALUES) counts.set(key, n)
  else counts.set(OTHER_CATEGORY, (counts.get(OTHER_CATEGORY) ?? 0) + n)
}

/** The `summary-output` record (its schema: summaryRecordSchema in src/record-formats.ts). */
export function summaryRecord(instanceId: string, total: OutcomeCounts, window: OutcomeCounts, windowStartMs: number, nowMs: number, final = false): SummaryRecord {
  const now = new Date(nowMs).toISOString()
  return {
    instance_id: instanceId,
    time: now,
    window_start: new Date(windowStartMs).toISOString(),
    window_end: now,
    total: total.toJSON(),
    window: window.toJSON(),
    ...(final ? { final: true as const } : {}),
  }
}
