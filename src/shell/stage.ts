import type { Logger } from './log.ts'
import { sleep } from './backoff.ts'
import { StoppedWaiting } from './retry.ts'
import type { KafkaConnection } from './kafka/connection.ts'
import type { KpipeProducer } from './kafka/producer.ts'
import { ConsumerLoop, type BatchContext, type BatchHandler, type Delivery, type Punctuation, type TopicPartition } from './kafka/consumer-loop.ts'

/**
 * Every long-running part of kpipe (a stage, the collector, the dashboard, the generator) has
 * this one lifecycle, so that a command or `kpipe up` runs a list of them the same way.
 */
export interface Component {
  readonly name: string
  /**
   * Starts it, waiting for what it needs (Kafka, the database) with backoff; resolves once it
   * runs. Aborting `signal` stops it gracefully, also during those waits (then `done`
   * resolves at once: stopping early is not a failure). Rejects on a fatal start-up error.
   */
  start(signal: AbortSignal): Promise<void>
  /** whether it can do its work now (/readyz) */
  ready(): Promise<boolean>
  /** settles once it has stopped: resolves after a graceful stop, rejects on a fatal error */
  readonly done: Promise<void>
}

/**
 * A stage: input topics, a handler from a batch to the records to produce, optional
 * punctuation (periodic records that share the batch's producer and transaction), and which
 * handler errors are retried. The runtime owns consuming, producing, committing, the lag and
 * the Prometheus counters (see ConsumerLoop); the stage never touches the client.
 */
export interface Stage {
  /** the `part` label of its Prometheus series, and its name in logs */
  name: string
  connection: KafkaConnection
  groupId: string
  inputs: string[]
  handle: BatchHandler
  /** after a batch's outputs are acknowledged and its offsets committed, once per `handle` call (pipelined: per slice), with that call's number of records and context (what it wants of the records then, it carries in `context.carry`) */
  committed?: (records: number, context: BatchContext) => void
  punctuation?: Punctuation
  /** handler errors after which the same batch is tried again, with backoff, nothing committed; any other stops the stage */
  retry?: { isRetriable(error: unknown): boolean }
  /** the `outcome` label of each output topic */
  outcomes?: Record<string, string>
  /** writes the outputs; closed by the runtime when the stage stops */
  producer?: KpipeProducer
  /** exactly-once: more transactional producers, transactions going to each in turn (ConsumerLoopOptions.moreProducers); closed with the first */
  moreProducers?: KpipeProducer[]
  /** exactly-once with moreProducers and pipeline: the most batches one transaction carries (ConsumerLoopOptions.batchesPerTransaction) */
  batchesPerTransaction?: number
  /** how much the consumer reads ahead of the loop (ConsumerLoopOptions.readAhead) */
  readAhead?: { fetchBytes?: number; records?: number }
  delivery?: Delivery
  from?: 'earliest' | 'latest'
  maxBatchSize?: number
  readCommitted?: boolean
  /**
   * Handle the next batch while the one before is written and committed (see ConsumerLoop):
   * only for a handler that computes outputs and has no side effect of its own (default false)
   */
  pipeline?: boolean
  /** with `pipeline`: the most records one handler call gets (default 500; ConsumerLoopOptions.pipelineSlice) */
  pipelineSlice?: number
  /** the stage keeps its offsets itself (e.g. in PostgreSQL, in the transaction of its rows): where each assigned partition starts */
  startingOffsets?: (partitions: TopicPartition[]) => Promise<Map<string, bigint>>
  /** false when the stage commits its offsets itself (default true: the runtime commits them to Kafka) */
  commitOffsets?: boolean
  log: Logger
  /** start-up work before the first fetch (topics, tables, fencing); its waits end with StoppedWaiting when the signal aborts */
  prepare?: (signal: AbortSignal) => Promise<void>
  /** releases what the stage owns (database, timers) once the loop has ended */
  close?: () => Promise<void>
  /** readiness beyond the loop's own (e.g. the database answers) */
  ready?: () => Promise<boolean>
}

/** What closing the producer may take once everything is committed. */
const CLOSE_BUDGET_MS = 3000

/** A stage as a component: prepare → consume → handle → produce → commit, until the signal aborts. */
export class StageComponent implements Component {
  readonly name: string
  readonly done: Promise<void>
  readonly #stage: Stage
  #loop: ConsumerLoop | undefined
  #settle!: { resolve: () => void; reject: (error: unknown) => void }
  #started = false

  constructor(stage: Stage) {
    this.#stage = stage
    this.name = stage.name
    this.done = new Promise<void>((resolve, reject) => (this.#settle = { resolve, reject }))
    // awaited by whoever runs the stage; never an unhandled rejection
    this.done.catch(() => {})
  }

  /** the loop's figures once it runs: batches and records committed */
  get loop(): ConsumerLoop | undefined {
    return this.#loop
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#started) throw new Error(`${this.name} was started already`)
    this.#started = true
    const s = this.#stage
    try {
      await s.prepare?.(signal)
    } catch (error) {
      await this.#release()
      if (error instanceof StoppedWaiting) {
        s.log.info(`${s.name}: ${error.message}; nothing was read`)
        this.#settle.resolve()
        return
      }
      this.#settle.reject(error)
      throw error
    }
    const loop = new ConsumerLoop({
      connection: s.connection,
      groupId: s.groupId,
      topics: s.inputs,
      handler: s.handle,
      log: s.log,
      part: s.name,
      ...(s.committed ? { onCommitted: s.committed } : {}),
      ...(s.pipeline ? { pipeline: true } : {}),
      ...(s.pipelineSlice ? { pipelineSlice: s.pipelineSlice } : {}),
      ...(s.producer ? { producer: s.producer } : {}),
      ...(s.moreProducers ? { moreProducers: s.moreProducers } : {}),
      ...(s.batchesPerTransaction ? { batchesPerTransaction: s.batchesPerTransaction } : {}),
      ...(s.readAhead ? { readAhead: s.readAhead } : {}),
      ...(s.punctuation ? { punctuation: s.punctuation } : {}),
      ...(s.retry ? { isRetriable: s.retry.isRetriable } : {}),
      ...(s.outcomes ? { outcomes: s.outcomes } : {}),
      ...(s.delivery ? { delivery: s.delivery } : {}),
      ...(s.from ? { from: s.from } : {}),
      ...(s.maxBatchSize ? { maxBatchSize: s.maxBatchSize } : {}),
      ...(s.readCommitted !== undefined ? { readCommitted: s.readCommitted } : {}),
      ...(s.startingOffsets ? { startingOffsets: s.startingOffsets } : {}),
      ...(s.commitOffsets !== undefined ? { commitOffsets: s.commitOffsets } : {}),
    })
    this.#loop = loop
    const onAbort = () => loop.stop()
    signal.addEventListener('abort', onAbort, { once: true })
    if (signal.aborted) loop.stop()
    loop.run().then(
      async () => {
        signal.removeEventListener('abort', onAbort)
        await this.#release()
        this.#settle.resolve()
      },
      async (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        await this.#release()
        this.#settle.reject(error)
      },
    )
  }

  async ready(): Promise<boolean> {
    const loop = this.#loop
    if (!loop || loop.stopping || loop.consumer === undefined) return false
    return this.#stage.ready ? this.#stage.ready() : true
  }

  async #release(): Promise<void> {
    const s = this.#stage
    // bounded: a producer waiting on a broker that is gone must not hold up the exit (everything handled is committed)
    const producers = [s.producer, ...(s.moreProducers ?? [])].filter((p) => p !== undefined)
    if (producers.length > 0) await Promise.race([Promise.all(producers.map((p) => p.close().catch(() => {}))), sleep(CLOSE_BUDGET_MS)])
    await s.close?.().catch((error: unknown) => s.log.warn({ err: error }, `${s.name}: closing failed`))
  }
}

/**
 * A component from a function that runs until its signal aborts (the generator): started when
 * called, done when it returns. Its readiness is that it still runs.
 */
export class TaskComponent implements Component {
  readonly done: Promise<void>
  #settle!: { resolve: () => void; reject: (error: unknown) => void }
  #running = false

  constructor(
    readonly name: string,
    readonly run: (signal: AbortSignal) => Promise<unknown>,
  ) {
    this.done = new Promise<void>((resolve, reject) => (this.#settle = { resolve, reject }))
    this.done.catch(() => {})
  }

  async start(signal: AbortSignal): Promise<void> {
    this.#running = true
    this.run(signal).then(
      () => this.#settle.resolve(),
      (error: unknown) => this.#settle.reject(error),
    ).finally(() => {
      this.#running = false
    })
  }

  async ready(): Promise<boolean> {
    return this.#running
  }
}
