import type { Settings } from '../../shell/settings.ts'
import { lineageHeaders, type ConsumedRecord, type OutputRecord } from '../../shell/kafka/records.ts'
import { processingLatency } from '../../shell/observability/prometheus.ts'
import type { BatchContext, PunctuationContext } from '../../shell/kafka/consumer-loop.ts'
import { transformLogin } from '../core/transform-login.ts'
import { errorRecord, errorUserId } from '../core/error-record.ts'
import { OutcomeCounts, summaryRecord } from '../core/outcome-counts.ts'
import { PercentileHistogram } from '../core/percentiles.ts'
import type { FailedLogin, LoginRules } from '../core/login-event.ts'
import type { IntervalMetricsRecord, PartitionLag } from '../../record-formats.ts'
import { FAILED, PROCESSED, packValues, type RulesResult } from '../core/rules-batch.ts'
import type { RulesThread } from './rules-thread.ts'

/** A summary is due at least this often while anything changed (SPEC.md). */
export const SUMMARY_MAX_INTERVAL_MS = 10_000

export type { PartitionLag }

/** interval metrics are published this often (SPEC.md) */
export const METRICS_INTERVAL_MS = 1000
/** With a rules thread: records per run asked of it (a batch is several runs, its outputs are built as each run comes back). */
export const RULES_RUN = 500

/**
 * What a handled batch carries to its commit (BatchContext.carry): its outcomes counted, and its
 * records' timestamps, whose latency is measured when the batch is committed. The records
 * themselves are let go once handled.
 */
class Carried {
  constructor(readonly counts: OutcomeCounts, readonly timestamps: Float64Array) {}

  static of(counts: OutcomeCounts, batch: ConsumedRecord[]): Carried {
    const timestamps = new Float64Array(batch.length)
    for (let i = 0; i < batch.length; i++) timestamps[i] = Number(batch[i]!.timestamp)
    return new Carried(counts, timestamps)
  }
}

/**
 * The login processor's logic as a stage: a batch in, the routed records out (`handle`).
 * Counts are taken when the runtime reports a batch committed (`committed`), so a batch that is
 * written again after a failure is not counted twice. Summary and interval metrics are its
 * punctuation (`periodic`): the runtime writes them with the next batch (same transaction under
 * exactly-once), or on their own when no batch comes.
 */
export class LoginProcessor {
  readonly #settings: Settings
  readonly #rules: LoginRules
  readonly #instanceId: string
  readonly #perMessage: boolean

  readonly total = new OutcomeCounts()
  #window = new OutcomeCounts()
  #windowStart: number
  /** received since the last summary, for SUMMARY_PUBLISH_INTERVAL */
  #sinceSummary = 0

  // interval metrics, reset every tick
  #metricsStart: number
  #messagesIn = 0
  #outProcessed = 0
  #outFiltered = 0
  #outErrors = 0
  readonly #latency = new PercentileHistogram()
  /** age of the processed events (filtered ones are stale by definition and would drown it) */
  readonly #eventAge = new PercentileHistogram()

  constructor(settings: Settings, instanceId: string, now = Date.now()) {
    if (!settings.KPIPE_HASH_KEY) throw new Error('the login processor needs KPIPE_HASH_KEY')
    this.#settings = settings
    this.#instanceId = instanceId
    this.#perMessage = settings.METRICS_MODE === 'per-message'
    this.#rules = {
      hashKey: settings.KPIPE_HASH_KEY,
      maxMessageAgeSeconds: settings.MAX_MESSAGE_AGE,
      allowedAppVersions: new Set(settings.ALLOWED_APP_VERSIONS),
    }
    this.#windowStart = now
    this.#metricsStart = now
  }

  /** The rules, as they are applied (to hand them to a rules thread). */
  get rules(): LoginRules {
    return this.#rules
  }

  get instanceId(): string {
    return this.#instanceId
  }

  /** The topics it writes, each with the `outcome` label of its records. */
  get outcomes(): Record<string, string> {
    const s = this.#settings
    return { [s.TOPIC_PROCESSED]: 'processed', [s.TOPIC_CLEANED]: 'filtered', [s.TOPIC_ERRORS]: 'error', [s.TOPIC_METRICS]: 'metrics', [s.TOPIC_SUMMARY]: 'summary' }
  }

  /** The BatchHandler: every input record becomes exactly one record in one of the three topics. */
  readonly handle = (batch: ConsumedRecord[], context?: BatchContext): OutputRecord[] => {
    const s = this.#settings
    const now = Date.now()
    let time: string | undefined
    const counts = new OutcomeCounts()
    const outputs: OutputRecord[] = []
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i]!
      const started = this.#perMessage ? performance.now() : 0
      const outcome = transformLogin(record.value, now, this.#rules)
      counts.add(outcome)
      const headers = lineageHeaders(record)
      if (outcome.kind === 'processed') {
        outputs.push({ topic: s.TOPIC_PROCESSED, key: outcome.userId, value: outcome.value, headers })
        this.#eventAge.record(now - outcome.timestamp * 1000)
      } else if (outcome.kind === 'filtered') {
        outputs.push({ topic: s.TOPIC_CLEANED, key: outcome.userId, value: outcome.value, headers })
      } else {
        time ??= new Date(now).toISOString()
        outputs.push(this.#errorOutput(outcome, record, headers, time))
      }
      if (this.#perMessage) {
        // built as text on the per-record path; its shape is perMessageMetricsSchema's (checked by the tests)
        const processingTime = Math.round((performance.now() - started) * 1000) / 1000
        outputs.push({
          topic: s.TOPIC_METRICS,
          key: this.#instanceId,
          value: `{"mode":"per-message","message_id":${JSON.stringify(`${record.topic}/${record.partition}/${record.offset}`)},"processing_time":${processingTime},` +
            `"topic":${JSON.stringify(record.topic)},"timestamp":"${new Date().toISOString()}"}`,
          headers,
        })
      }
    }
    if (context) context.carry = Carried.of(counts, batch)
    return outputs
  }

  /**
   * `handle` with the rules applied on a thread of their own: the same outputs, the same counts.
   * The batch goes to the thread in runs of RULES_RUN records, all asked at once; the outputs of
   * each run are built here as it comes back, while the thread works on the next. Not for
   * METRICS_MODE=per-message, which times each record's rules where they run (use `handle`).
   */
  threaded(thread: RulesThread): (batch: ConsumedRecord[], context?: BatchContext) => Promise<OutputRecord[]> {
    if (this.#perMessage) throw new Error('METRICS_MODE=per-message times the rules per record: use handle, not a rules thread')
    return async (batch, context) => {
      const now = Date.now()
      const runs: Promise<RulesResult>[] = []
      for (let from = 0; from < batch.length; from += RULES_RUN) {
        const run = thread.run(packValues(batch, from, Math.min(batch.length, from + RULES_RUN)), now)
        // a thread that fails fails every run: the first one awaited throws, the others are not left unhandled
        run.catch(() => {})
        runs.push(run)
      }
      const counts = new OutcomeCounts()
      const outputs: OutputRecord[] = []
      const time = { iso: undefined as string | undefined }
      for (let r = 0; r < runs.length; r++) {
        const result = await runs[r]!
        this.#outputsOf(batch, r * RULES_RUN, result, now, outputs, time)
        counts.merge(result.counts)
      }
      if (context) context.carry = Carried.of(counts, batch)
      return outputs
    }
  }

  /** The outputs of a run of records (batch[from…]) from the rules thread's result, in their order. */
  #outputsOf(batch: ConsumedRecord[], from: number, result: RulesResult, now: number, outputs: OutputRecord[], time: { iso: string | undefined }): void {
    const s = this.#settings
    const { kinds, bounds, timestamps, failures } = result
    const bytes = Buffer.from(result.bytes.buffer, result.bytes.byteOffset, result.bytes.byteLength)
    let failed = 0
    for (let i = 0; i < kinds.length; i++) {
      const record = batch[from + i]!
      const headers = lineageHeaders(record)
      const kind = kinds[i]
      if (kind === FAILED) {
        time.iso ??= new Date(now).toISOString()
        outputs.push(this.#errorOutput(failures[failed++]!, record, headers, time.iso))
        continue
      }
      const value = bytes.subarray(bounds[3 * i]!, bounds[3 * i + 1]!)
      const key = bytes.subarray(bounds[3 * i + 1]!, bounds[3 * i + 2]!)
      if (kind === PROCESSED) {
        outputs.push({ topic: s.TOPIC_PROCESSED, key, value, headers })
        this.#eventAge.record(now - timestamps[i]! * 1000)
      } else {
        outputs.push({ topic: s.TOPIC_CLEANED, key, value, headers })
      }
    }
  }

  /** The error record of a failed input, keyed by its user id where it has one. `time`: when it was handled. */
  #errorOutput(outcome: FailedLogin, record: ConsumedRecord, headers: OutputRecord['headers'], time: string): OutputRecord {
    const topic = this.#settings.TOPIC_ERRORS
    const value = errorRecord(outcome, record.value, record, time)
    const key = errorUserId(outcome)
    return key === null ? { topic, value, headers } : { topic, key, value, headers }
  }

  /** The batch's outputs are acknowledged and its offsets committed: its counts and latency (carried from `handle`) count now. */
  readonly committed = (_records: number, context: BatchContext): void => {
    const carried = context.carry
    if (!(carried instanceof Carried)) return
    const { counts, timestamps } = carried
    this.total.merge(counts)
    this.#window.merge(counts)
    this.#sinceSummary += counts.received
    this.#messagesIn += counts.received
    this.#outProcessed += counts.processed
    this.#outFiltered += counts.filteredTotal
    this.#outErrors += counts.errorsTotal

    const now = Date.now()
    for (let i = 0; i < timestamps.length; i++) {
      const ms = now - timestamps[i]!
      this.#latency.record(ms)
      processingLatency.observe(ms / 1000)
    }
  }

  /**
   * The punctuation: the interval metrics once a second (METRICS_MODE=interval), the summary
   * when due; both once more on a graceful stop. The one place that decides what is due.
   */
  periodic(context: PunctuationContext): OutputRecord[] {
    const { now, final } = context
    const out: OutputRecord[] = []
    if (!this.#perMessage && (final || this.#intervalOver(now))) out.push(this.takeMetrics(context.lag, now))
    if (final || this.summaryDue(now)) out.push(this.takeSummary(now, final))
    return out
  }

  /** Whether `periodic` would give a record at `now` (not stopping): the loop then lets the commits under way end first. */
  periodicDue(now: number): boolean {
    return (!this.#perMessage && this.#intervalOver(now)) || this.summaryDue(now)
  }

  /** the interval metrics' second is over */
  #intervalOver(now: number): boolean {
    return now - this.#metricsStart >= METRICS_INTERVAL_MS
  }

  /** A summary is due: SUMMARY_PUBLISH_INTERVAL messages since the last, or 10 s with changes. */
  summaryDue(now = Date.now()): boolean {
    return this.#sinceSummary >= this.#settings.SUMMARY_PUBLISH_INTERVAL ||
      (this.#window.received > 0 && now - this.#windowStart >= SUMMARY_MAX_INTERVAL_MS)
  }

  /** The summary record; starts a new window. `final`: the last one, as the processor stops. */
  takeSummary(now = Date.now(), final = false): OutputRecord {
    const value = JSON.stringify(summaryRecord(this.#instanceId, this.total, this.#window, this.#windowStart, now, final))
    this.#window = new OutcomeCounts()
    this.#windowStart = now
    this.#sinceSummary = 0
    return { topic: this.#settings.TOPIC_SUMMARY, key: this.#instanceId, value }
  }

  /** The interval metrics record since the previous one; starts a new interval. */
  takeMetrics(lag: PartitionLag[], now = Date.now()): OutputRecord {
    const elapsed = Math.max(1, now - this.#metricsStart)
    const value = JSON.stringify({
      mode: 'interval',
      instance_id: this.#instanceId,
      time: new Date(now).toISOString(),
      interval_ms: elapsed,
      messages_in: this.#messagesIn,
      throughput_per_s: Math.round((this.#messagesIn * 1000 / elapsed) * 10) / 10,
      outputs: { processed: this.#outProcessed, filtered: this.#outFiltered, errors: this.#outErrors },
      latency_ms: this.#latency.summary(),
      event_age_ms: this.#eventAge.summary(),
      consumer_lag: lag,
    } satisfies IntervalMetricsRecord)
    this.#metricsStart = now
    this.#messagesIn = this.#outProcessed = this.#outFiltered = this.#outErrors = 0
    this.#latency.reset()
    this.#eventAge.reset()
    return { topic: this.#settings.TOPIC_METRICS, key: this.#instanceId, value }
  }
}
