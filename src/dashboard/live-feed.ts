import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Admin } from '@platformatic/kafka'
import { Counter } from 'prom-client'
import { ConsumerLoop } from '../shell/kafka/consumer-loop.ts'
import { describe } from '../shell/kafka/connection-errors.ts'
import type { KafkaConnection } from '../shell/kafka/connection.ts'
import type { ConsumedRecord } from '../shell/kafka/records.ts'
import type { Logger } from '../shell/log.ts'
import type { Settings } from '../shell/settings.ts'
import { registry } from '../shell/observability/prometheus.ts'
import { sleep } from '../shell/backoff.ts'
import { chartPoint, gapLimitMs, parseSample, type ChartPoint, type Sample } from './core/samples.ts'
import { LoginStats, parseLoginError, parseMetrics, parseSummary, type LoginError } from './core/login-stats.ts'

export const unreadableRecords = new Counter({
  name: 'kpipe_dashboard_unreadable_records_total',
  help: 'Records the dashboard feed could not read (not JSON, or not the expected shape), by topic',
  labelNames: ['topic'] as const,
  registers: [registry],
})

/** Events the feed emits, as the SSE stream forwards them. */
export interface FeedEvents {
  sample: [{ host: string; point: ChartPoint }]
  summary: [ReturnType<LoginStats['summary']>]
  processing: [ReturnType<LoginStats['processing']>]
  'login-error': [LoginError]
}

/** Group ids of dashboard feeds start with this; the Kafka panel hides them. */
export const FEED_GROUP_PREFIX = 'kpipe-dashboard-'

/** How far back, per partition, the feed starts on each topic, so the page has data at once. */
const REPLAY: Record<'performance' | 'summary' | 'metrics' | 'errors', number> = {
  performance: 600, // 5 min of one host at 500 ms; older history comes from PostgreSQL
  summary: 50,
  metrics: 300,
  errors: 50,
}

const LIVE_HISTORY_MS = 10 * 60_000

/**
 * The dashboard's live view of Kafka: a stage of the one consumer loop (part "dashboard"), on the
 * `performance`, `summary-output`, `metrics-output` and `processed-errors` topics, in a
 * consumer group of its own (every dashboard sees every record). Before it joins, the group's
 * offsets are set a few hundred records before the end, so a fresh page is not blank.
 * Topics that do not exist yet are picked up when they appear.
 */
export class LiveFeed extends EventEmitter<FeedEvents> {
  readonly groupId = `${FEED_GROUP_PREFIX}${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${process.pid}-${randomBytes(3).toString('hex')}`
  readonly stats = new LoginStats()
  readonly #samples = new Map<string, Sample[]>()
  readonly #settings: Settings
  readonly #connection: KafkaConnection
  readonly #admin: Admin
  readonly #log: Logger
  readonly #stopped = new AbortController()
  #loop: ConsumerLoop | undefined
  #running: Promise<void> | undefined
  #subscribed: string[] = []
  readonly #everSubscribed = new Set<string>()
  records = 0
  unreadable = 0

  constructor(options: { settings: Settings; connection: KafkaConnection; admin: Admin; log: Logger }) {
    super()
    this.#settings = options.settings
    this.#connection = options.connection
    this.#admin = options.admin
    this.#log = options.log
  }

  get topics(): string[] {
    const s = this.#settings
    return [s.TOPIC_PERFORMANCE, s.TOPIC_SUMMARY, s.TOPIC_METRICS, s.TOPIC_ERRORS]
  }

  /** topics the feed reads now */
  get subscribed(): string[] {
    return [...this.#subscribed]
  }

  /** Starts in the background; a broker that is down is retried, never fatal to the server. */
  start(): void {
    this.#running ??= this.#supervise()
  }

  async stop(): Promise<void> {
    this.#stopped.abort()
    this.#loop?.stop()
    await this.#running
    await this.#admin.deleteGroups({ groups: [this.groupId] }).catch(() => {})
  }

  hosts(): { host: string; last_sample: number }[] {
    return [...this.#samples].map(([host, s]) => ({ host, last_sample: s.at(-1)!.time }))
  }

  /** One host's samples seen live, oldest first. */
  samples(host: string): Sample[] {
    return [...(this.#samples.get(host) ?? [])]
  }

  /** The batch handler: updates the state and tells the listeners; writes nothing back to Kafka. */
  readonly handle = (batch: ConsumedRecord[]): [] => {
    const s = this.#settings
    let summaryChanged = false
    let processingChanged = false
    for (const record of batch) {
      this.records++
      let readable = true
      if (record.topic === s.TOPIC_PERFORMANCE) {
        const sample = parseSample(record.value, record.key)
        if (sample) this.#addSample(sample)
        else readable = false
      } else if (record.topic === s.TOPIC_SUMMARY) {
        const summary = parseSummary(record.value)
        if (summary) {
          this.stats.addSummary(summary)
          summaryChanged = true
        } else readable = false
      } else if (record.topic === s.TOPIC_METRICS) {
        const metrics = parseMetrics(record.value)
        this.stats.addMetrics(metrics)
        if (metrics.kind === 'interval') processingChanged = true
        readable = metrics.kind !== 'invalid'
      } else if (record.topic === s.TOPIC_ERRORS) {
        const error = parseLoginError(record.value)
        if (error) {
          this.stats.addError(error)
          this.emit('login-error', error)
        } else readable = false
      }
      if (!readable) {
        this.unreadable++
        unreadableRecords.inc({ topic: record.topic })
        this.#log.debug({ topic: record.topic, partition: record.partition, offset: record.offset.toString() }, 'dashboard feed skipped a record it cannot read')
      }
    }
    if (summaryChanged) this.emit('summary', this.stats.summary())
    if (processingChanged) this.emit('processing', this.stats.processing())
    return []
  }

  #addSample(sample: Sample): void {
    let list = this.#samples.get(sample.host)
    if (!list) {
      list = []
      this.#samples.set(sample.host, list)
    }
    const last = list.at(-1)
    // Records of one host share a partition, so they arrive in order; an older one is a replay.
    if (last && sample.time <= last.time) return
    list.push(sample)
    const oldest = sample.time - LIVE_HISTORY_MS
    let drop = 0
    while (drop < list.length && list[drop]!.time < oldest) drop++
    if (drop > 0) list.splice(0, drop)
    const step = last && list.length >= 3 ? last.time - list.at(-3)!.time : undefined
    this.emit('sample', { host: sample.host, point: chartPoint(sample, last, gapLimitMs(step)) })
  }

  async #supervise(): Promise<void> {
    const signal = this.#stopped.signal
    let failures = 0
    while (!signal.aborted) {
      try {
        const existing = new Set(await this.#admin.listTopics())
        const wanted = this.topics.filter((t) => existing.has(t))
        const added = wanted.filter((t) => !this.#subscribed.includes(t))
        if (added.length > 0) {
          // The group must be empty for its offsets to be set from outside: stop the loop first.
          this.#loop?.stop()
          await this.#loopDone
          this.#subscribed = []
          // only topics never read before: the group's committed offsets cover the others
          const fresh = added.filter((t) => !this.#everSubscribed.has(t))
          if (fresh.length > 0) await this.#replayFrom(fresh)
          for (const t of fresh) this.#everSubscribed.add(t)
          this.#subscribed = wanted
          this.#startLoop()
          this.#log.info({ topics: wanted }, `dashboard feed reading ${wanted.join(', ')}`)
        }
        if (wanted.length === this.topics.length) {
          await this.#loopDone
          if (!signal.aborted) await sleep(5000, signal)
          continue
        }
        failures = 0
      } catch (error) {
        // said once at warn level, then quietly retried every 5 s
        this.#log[failures++ === 0 ? 'warn' : 'debug']({ err: error }, `dashboard feed cannot reach Kafka (${describe(error, this.#connection)}); retrying every 5 s`)
      }
      await sleep(5000, signal)
    }
    this.#loop?.stop()
    await this.#loopDone
  }

  #loopDone: Promise<void> = Promise.resolve()

  #startLoop(): void {
    const loop = new ConsumerLoop({
      connection: this.#connection,
      groupId: this.groupId,
      topics: this.#subscribed,
      handler: this.handle,
      log: this.#log,
      part: 'dashboard',
      from: 'latest',
      maxBatchSize: 2000,
    })
    this.#loop = loop
    this.#loopDone = loop.run().catch((error: unknown) => {
      // A fatal error of the loop (e.g. authorisation) must not take the page down: log it;
      // the supervisor starts a new loop on its next round.
      this.#log.error({ err: error }, `dashboard feed stopped (${describe(error)})`)
      this.#subscribed = []
    })
  }

  /** Sets this group's offsets a little before the end of each partition of `topics`. */
  async #replayFrom(topics: string[]): Promise<void> {
    const s = this.#settings
    const back = (topic: string) =>
      BigInt(topic === s.TOPIC_PERFORMANCE ? REPLAY.performance : topic === s.TOPIC_SUMMARY ? REPLAY.summary : topic === s.TOPIC_METRICS ? REPLAY.metrics : REPLAY.errors)
    const metadata = await this.#admin.metadata({ topics, forceUpdate: true })
    const request = topics.map((name) => ({
      name,
      partitions: (metadata.topics.get(name)?.partitions ?? []).map((_, partitionIndex) => partitionIndex),
    }))
    const at = async (timestamp: bigint) => {
      const listed = await this.#admin.listOffsets({ topics: request.map((t) => ({ name: t.name, partitions: t.partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) })) })
      return new Map(listed.flatMap((t) => t.partitions.map((p) => [`${t.name}\0${p.partitionIndex}`, p.offset] as const)))
    }
    const [ends, starts] = await Promise.all([at(-1n), at(-2n)])
    const offsets = request.map((t) => ({
      name: t.name,
      partitionOffsets: t.partitions.map((partition) => {
        const end = ends.get(`${t.name}\0${partition}`) ?? 0n
        const start = starts.get(`${t.name}\0${partition}`) ?? 0n
        const from = end - back(t.name)
        return { partition, offset: from > start ? from : start }
      }),
    }))
    await this.#admin.alterConsumerGroupOffsets({ groupId: this.groupId, topics: offsets })
  }
}
