import { performance } from 'node:perf_hooks'
import type { Logger } from '../../shell/log.ts'
import type { Settings } from '../../shell/settings.ts'
import type { Component } from '../../shell/stage.ts'
import { sleep } from '../../shell/backoff.ts'
import { kafkaConnection } from '../../shell/kafka/connection.ts'
import { createProducer } from '../../shell/kafka/producer.ts'
import { ensureTopicsPatiently } from '../kafka-topics.ts'
import type { KpipeProducer } from '../../shell/kafka/producer.ts'
import type { OutputRecord } from '../../shell/kafka/records.ts'
import { describe } from '../../shell/kafka/connection-errors.ts'
import { retryWithBackoff, StoppedWaiting } from '../../shell/retry.ts'
import { collectorSamples, collectorSamplingSeconds, recordsOut } from '../../shell/observability/prometheus.ts'
import { HostSampler } from '../sampler.ts'
import { startSchedule, type Schedule } from '../scheduler.ts'

export interface CollectorOptions {
  producer: KpipeProducer
  topic: string
  host: string
  intervalMs: number
  diskPath?: string
  log: Logger
}

/** Samples kept while Kafka is unreachable: ten minutes' worth, at least 1000. */
const queueLimit = (intervalMs: number) => Math.max(1000, Math.ceil(600_000 / intervalMs))
const SEND_BATCH = 500

/**
 * The collector: samples on a drift-free schedule and produces each sample, keyed by host.
 * Sampling never waits for Kafka: samples queue while the broker is slow or away and are sent
 * in order once it answers; past ten minutes' worth the oldest are dropped, with a warning.
 */
export class Collector {
  readonly sampler: HostSampler
  readonly #options: CollectorOptions
  readonly #queue: OutputRecord[] = []
  readonly #stop = new AbortController()
  #schedule: Schedule | undefined
  #sender: Promise<void> | undefined
  #wake: (() => void) | undefined
  sent = 0
  dropped = 0
  /** ticks skipped because sampling fell behind (the schedule skips a late tick rather than run it late) */
  skipped = 0
  lastSendOk = false

  constructor(options: CollectorOptions) {
    this.#options = options
    this.sampler = new HostSampler(options.host, options.diskPath ?? '/')
  }

  start(): void {
    const { log, intervalMs } = this.#options
    this.sampler.prime()
    this.#sender = this.#sendLoop()
    this.#schedule = startSchedule({
      intervalMs,
      // the first sample's cpu_usage needs a few clock ticks (10 ms each) after the baseline
      notBefore: Date.now() + intervalMs / 2,
      onTick: (time) => this.#tick(time),
      onSkipped: (count) => {
        this.skipped += count
        log.warn(`sampling fell behind: ${count} tick(s) of ${intervalMs} ms skipped`)
      },
      onError: (error) => log.error({ err: error }, `sampling failed: ${describe(error)}`),
    })
    log.info(`sampling ${this.#options.host} every ${intervalMs} ms from ${this.sampler.source === 'proc' ? '/proc' : 'the os module'} → ${this.#options.topic}`)
  }

  #tick(time: Date): void {
    const started = performance.now()
    const sample = this.sampler.sample(time)
    collectorSamplingSeconds.observe((performance.now() - started) / 1000)
    this.#queue.push({ topic: this.#options.topic, key: sample.host, value: JSON.stringify(sample) })
    const limit = queueLimit(this.#options.intervalMs)
    if (this.#queue.length > limit) {
      const excess = this.#queue.length - limit
      this.#queue.splice(0, excess)
      this.dropped += excess
      this.#options.log.warn(`Kafka has not accepted samples for a while: ${excess} oldest sample(s) dropped (${this.dropped} in all)`)
    }
    this.#wake?.()
  }

  async #sendLoop(): Promise<void> {
    const { producer, log, host, topic } = this.#options
    let failed = false
    const sendQueued = async () => {
      const messages = this.#queue.slice(0, SEND_BATCH)
      try {
        await producer.send({ messages })
      } catch (error) {
        this.lastSendOk = false
        failed = true
        throw error
      }
      this.#queue.splice(0, messages.length)
      this.sent += messages.length
      this.lastSendOk = true
      collectorSamples.inc({ host }, messages.length)
      recordsOut.inc({ part: 'collector', topic, outcome: 'sample' }, messages.length)
      if (failed) log.info(`Kafka answers again; ${messages.length} queued sample(s) sent`)
      failed = false
    }
    for (;;) {
      if (this.#queue.length === 0) {
        if (this.#stop.signal.aborted) return
        await new Promise<void>((resolve) => (this.#wake = resolve))
        this.#wake = undefined
        continue
      }
      try {
        await retryWithBackoff(sendQueued, {
          what: () => `cannot produce samples, ${this.#queue.length} queued`,
          log,
          signal: this.#stop.signal,
        })
      } catch (error) {
        // on stop, give up on what Kafka does not take
        if (error instanceof StoppedWaiting) return
        throw error
      }
    }
  }

  /** Stops sampling and sends what is queued (the caller bounds how long it waits). */
  async stop(): Promise<void> {
    this.#schedule?.stop()
    await this.#schedule?.done
    this.#stop.abort()
    this.#wake?.()
    await this.#sender
  }
}

export interface CollectorComponentOptions {
  settings: Settings
  log: Logger
  host: string
  intervalMs: number
  diskPath?: string
}

/** What a stop may take: sending what is queued, then closing the producer (SPEC.md: within 10 s). */
const STOP_BUDGET_MS = 7000
const CLOSE_BUDGET_MS = 1000

/**
 * The collector as a source component, with the lifecycle of every part: waits for Kafka
 * (creating the `performance` topic when missing), samples until the signal aborts, then sends
 * what is queued (bounded) and closes.
 */
export class CollectorComponent implements Component {
  readonly name = 'collector'
  readonly done: Promise<void>
  readonly #options: CollectorComponentOptions
  #collector: Collector | undefined
  #settle!: () => void

  constructor(options: CollectorComponentOptions) {
    this.#options = options
    this.done = new Promise<void>((resolve) => (this.#settle = resolve))
  }

  get collector(): Collector | undefined {
    return this.#collector
  }

  async start(signal: AbortSignal): Promise<void> {
    const { settings, log } = this.#options
    const connection = kafkaConnection(settings, 'metrics-collector')
    try {
      await ensureTopicsPatiently(connection, [settings.TOPIC_PERFORMANCE], log, signal)
    } catch (error) {
      if (!(error instanceof StoppedWaiting)) throw error
      this.#settle()
      return
    }
    const producer = createProducer(connection)
    const collector = new Collector({ producer, topic: settings.TOPIC_PERFORMANCE, host: this.#options.host, intervalMs: this.#options.intervalMs, log, ...(this.#options.diskPath ? { diskPath: this.#options.diskPath } : {}) })
    this.#collector = collector
    collector.start()
    const stop = async () => {
      await Promise.race([collector.stop(), sleep(STOP_BUDGET_MS)])
      await Promise.race([producer.close().catch(() => {}), sleep(CLOSE_BUDGET_MS)])
      this.#settle()
    }
    if (signal.aborted) void stop()
    else signal.addEventListener('abort', () => void stop(), { once: true })
  }

  async ready(): Promise<boolean> {
    return this.#collector?.lastSendOk === true
  }
}
