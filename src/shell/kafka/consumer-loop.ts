import { Consumer, FetchIsolationLevels, type MessagesStream } from '@platformatic/kafka'
import type { Logger } from '../log.ts'
import { sleep } from '../backoff.ts'
import { retryWithBackoff, StoppedWaiting } from '../retry.ts'
import { clientOptions, type KafkaConnection } from './connection.ts'
import { describe, isRetriableKafkaError, kafkaSetupError } from './connection-errors.ts'
import type { KpipeProducer } from './producer.ts'
import { rawDeserializers, type ConsumedRecord, type OutputRecord } from './records.ts'

export type Delivery = 'at-least-once' | 'exactly-once'

export interface BatchContext {
  /** 0 the first time a batch is handed over, then 1, 2, … when the handler asked for a retry */
  attempt: number
}

/**
 * The logic of a pipeline stage: a batch in, the records to produce out. It may do its own
 * side effect first (the sink writes to PostgreSQL) and throw to refuse the batch: nothing of
 * it is then committed. It never talks to Kafka itself.
 */
export type BatchHandler = (batch: ConsumedRecord[], context: BatchContext) => OutputRecord[] | Promise<OutputRecord[]>

export interface ConsumerLoopOptions {
  connection: KafkaConnection
  groupId: string
  topics: string[]
  handler: BatchHandler
  log: Logger
  /** needed when the handler returns records */
  producer?: KpipeProducer
  delivery?: Delivery
  /** where a group with no committed offset starts */
  from?: 'earliest' | 'latest'
  maxBatchSize?: number
  /** handler errors for which the same batch is retried with backoff (e.g. the database is down); others stop the loop */
  isRetriable?: (error: unknown) => boolean
  /** called once a batch's outputs are acknowledged and its offsets committed */
  onCommitted?: (batch: ConsumedRecord[], outputs: OutputRecord[]) => void
  /** read only committed records of transactional producers (default: true) */
  readCommitted?: boolean
  sessionTimeoutMs?: number
}

/** A handler error the loop must not retry: the loop stops without committing the batch. */
export class FatalHandlerError extends Error {
  override name = 'FatalHandlerError'
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause))
  }
}

const WRITE_ATTEMPTS = 6
/** how long leaving the group may take at shutdown before the loop moves on */
const CLOSE_BUDGET_MS = 3000
const FETCH_MAX_BYTES = 2 * 1024 * 1024

/**
 * The one consumer loop of kpipe: fetch a batch → hand it to the handler → write its outputs
 * (acks=all) → commit the batch's offsets. Offsets are committed only after every output is
 * acknowledged; in exactly-once mode outputs and offsets are committed in one Kafka
 * transaction. A lost connection is retried with backoff from the last committed offset.
 * `stop()` stops fetching, lets the batch in flight finish and commit, then leaves the group.
 */
export class ConsumerLoop {
  readonly #options: Required<Pick<ConsumerLoopOptions, 'delivery' | 'from' | 'maxBatchSize' | 'readCommitted' | 'sessionTimeoutMs'>> & ConsumerLoopOptions
  readonly #stop = new AbortController()
  #consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer> | undefined
  /** assigned partitions as the group coordinator last told us */
  assignments: { topic: string; partitions: number[] }[] = []
  batches = 0
  records = 0

  constructor(options: ConsumerLoopOptions) {
    this.#options = {
      delivery: 'at-least-once',
      from: 'earliest',
      maxBatchSize: 5000,
      readCommitted: true,
      sessionTimeoutMs: 10_000,
      ...options,
    }
    if (this.#options.delivery === 'exactly-once' && !this.#options.producer) {
      throw new Error('exactly-once delivery needs a transactional producer')
    }
  }

  get stopping(): boolean {
    return this.#stop.signal.aborted
  }

  get consumer() {
    return this.#consumer
  }

  stop(): void {
    this.#stop.abort()
  }

  /** Runs until `stop()` (resolves) or a fatal error (rejects). */
  async run(): Promise<void> {
    try {
      await retryWithBackoff((attempt) => this.#session(() => attempt.progressed()), {
        what: 'Kafka unavailable',
        log: this.#options.log,
        signal: this.#stop.signal,
        retriable: (error) => !isFatal(error),
        fatal: (error) => {
          const cause = error instanceof FatalHandlerError ? error.cause : error
          return kafkaSetupError(cause, this.#options.connection) ?? cause
        },
      })
    } catch (error) {
      if (!(error instanceof StoppedWaiting)) throw error
    }
  }

  async #session(onProgress: () => void): Promise<void> {
    const o = this.#options
    const consumer = new Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>({
      ...clientOptions(o.connection, `${o.connection.clientId}-consumer`),
      groupId: o.groupId,
      deserializers: rawDeserializers,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(o.sessionTimeoutMs / 3)),
      rebalanceTimeout: o.sessionTimeoutMs * 2,
    })
    this.#consumer = consumer
    consumer.on('consumer:group:join', (payload: { assignments?: { topic: string; partitions: number[] }[] }) => {
      this.assignments = payload.assignments ?? []
      o.log.debug({ assignments: this.assignments }, 'partitions assigned')
    })
    let stream: MessagesStream<Buffer | undefined, Buffer | undefined, string, Buffer> | undefined
    try {
      stream = await consumer.consume({
        topics: o.topics,
        mode: 'committed',
        fallbackMode: o.from,
        autocommit: false,
        maxWaitTime: 500,
        // A fetch of about one batch, and room in the stream for one more: the next fetch runs
        // while a batch is handled, and no more is decoded than the loop takes (the client's
        // 10 MB default decoded ~50,000 records at once: GC took a fifth of the profile, peak RSS ~370 MB).
        maxBytes: FETCH_MAX_BYTES,
        highWaterMark: o.maxBatchSize,
        isolationLevel: o.readCommitted ? FetchIsolationLevels.READ_COMMITTED : FetchIsolationLevels.READ_UNCOMMITTED,
      })
      let streamError: unknown
      stream.on('error', (error: unknown) => {
        streamError = error
      })
      // Keep a 'readable' listener attached for the stream's life: when the last one is removed,
      // Node sets readableFlowing back to null, and the client then never fetches again once its
      // buffer has been full (the loop stalled after some 45k records).
      stream.on('readable', () => {})
      while (!this.stopping) {
        const batch = await this.#nextBatch(stream, () => streamError)
        if (batch.length === 0) continue
        await this.#process(consumer, batch)
        onProgress()
      }
    } finally {
      this.#consumer = undefined
      // Everything handled is committed by now: closing must not wait on requests to a broker
      // that is gone (the client retries them for up to a minute), so each step is bounded.
      if (stream) await Promise.race([stream.close().catch(() => {}), sleep(CLOSE_BUDGET_MS)])
      await Promise.race([new Promise<void>((resolve) => consumer.close(true, () => resolve())), sleep(CLOSE_BUDGET_MS)])
    }
  }

  /** Whatever the stream has buffered, up to maxBatchSize; waits for at least one record. */
  async #nextBatch(stream: MessagesStream<Buffer | undefined, Buffer | undefined, string, Buffer>, error: () => unknown): Promise<ConsumedRecord[]> {
    for (;;) {
      if (this.stopping) return []
      const failure = error()
      if (failure) throw failure
      const batch: ConsumedRecord[] = []
      let record: ConsumedRecord | null
      while (batch.length < this.#options.maxBatchSize && (record = stream.read() as ConsumedRecord | null) !== null) batch.push(record)
      if (batch.length > 0) return batch
      if (stream.destroyed || stream.readableEnded) throw new Error('the consumer stream ended')
      await new Promise<void>((resolve) => {
        const wake = () => {
          stream.off('readable', wake)
          stream.off('error', wake)
          stream.off('close', wake)
          this.#stop.signal.removeEventListener('abort', wake)
          resolve()
        }
        stream.on('readable', wake)
        stream.on('error', wake)
        stream.on('close', wake)
        this.#stop.signal.addEventListener('abort', wake, { once: true })
      })
    }
  }

  async #process(consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>, batch: ConsumedRecord[]): Promise<void> {
    const o = this.#options
    const outputs = await retryWithBackoff((attempt) => Promise.resolve(o.handler(batch, { attempt: attempt.number - 1 })), {
      what: `batch of ${batch.length} not handled`,
      suffix: ', nothing committed',
      log: o.log,
      signal: this.#stop.signal,
      retriable: (error) => o.isRetriable?.(error) === true,
      fatal: (error) => new FatalHandlerError(error),
    })
    if (o.delivery === 'exactly-once') await this.#writeTransaction(consumer, batch, outputs)
    else {
      await this.#writeOutputs(outputs)
      await this.#commit(consumer, batch)
    }
    this.batches++
    this.records += batch.length
    o.onCommitted?.(batch, outputs)
  }

  async #writeOutputs(outputs: OutputRecord[]): Promise<void> {
    if (outputs.length === 0) return
    const producer = this.#options.producer
    if (!producer) throw new FatalHandlerError(new Error('the handler returned records but the loop has no producer'))
    for (const chunk of sendChunks(outputs)) await this.#withRetries('write outputs', () => producer.send({ messages: chunk }))
  }

  async #commit(consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>, batch: ConsumedRecord[]): Promise<void> {
    const offsets = lastPerPartition(batch).map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset + 1n, leaderEpoch: -1 }))
    try {
      await consumer.commit({ offsets })
    } catch (error) {
      // The outputs are written; an uncommitted offset only means this batch may be read again
      // (at-least-once). A rebalance is the usual cause; the next commit covers it.
      this.#options.log.warn({ err: error }, `offset commit failed (${describe(error)}); the batch may be delivered again`)
    }
  }

  async #writeTransaction(consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>, batch: ConsumedRecord[], outputs: OutputRecord[]): Promise<void> {
    const producer = this.#options.producer!
    await this.#withRetries('commit transaction', async () => {
      const tx = await producer.beginTransaction()
      try {
        await tx.addConsumer(consumer)
        for (const chunk of sendChunks(outputs)) await tx.send({ messages: chunk })
        for (const last of lastPerPartition(batch)) await tx.addOffset(last)
        await tx.commit()
      } catch (error) {
        if (!tx.completed) await tx.abort().catch(() => {})
        throw error
      }
    })
  }

  /** A write that failed for a reason other than a refused login is tried again a few times, the same records. */
  async #withRetries(what: string, action: () => Promise<unknown>): Promise<void> {
    await retryWithBackoff(action, {
      what: `${what} failed`,
      log: this.#options.log,
      // on stop, the attempt under way may still finish the batch; no new one starts after it fails
      retriable: (error) => !isFatal(error) && !this.stopping,
      attempts: WRITE_ATTEMPTS,
      maxDelayMs: 5000,
    })
  }
}

/**
 * The client sends one record batch per partition per send, and the broker refuses batches over
 * message.max.bytes (1 MiB by default): a big handler output goes out in chunks below that.
 * A partition's batch never holds more than its topic's share of a chunk, so the bytes are
 * counted per topic: a batch of outputs spread over three topics needs fewer sends (and fewer
 * acks=all round trips) than when every byte counted against one limit.
 */
const MAX_SEND_BYTES = 768 * 1024

export function* sendChunks(outputs: OutputRecord[], maxBytes = MAX_SEND_BYTES): Generator<OutputRecord[]> {
  let start = 0
  const bytes = new Map<string, number>()
  for (let i = 0; i < outputs.length; i++) {
    const record = outputs[i]!
    const size = approximateSize(record)
    const topicBytes = bytes.get(record.topic) ?? 0
    if (i > start && topicBytes + size > maxBytes) {
      yield outputs.slice(start, i)
      start = i
      bytes.clear()
      bytes.set(record.topic, size)
    } else {
      bytes.set(record.topic, topicBytes + size)
    }
  }
  if (start < outputs.length) yield start === 0 ? outputs : outputs.slice(start)
}

function approximateSize(record: OutputRecord): number {
  const { key, value } = record
  // 64: record overhead and the lineage headers
  return 64 + (typeof value === 'string' ? Buffer.byteLength(value) : (value?.length ?? 0)) + (typeof key === 'string' ? key.length : (key?.length ?? 0))
}

/** The last record of each topic-partition in a batch (records arrive in offset order per partition). */
export function lastPerPartition<T extends { topic: string; partition: number; offset: bigint }>(batch: T[]): T[] {
  const last = new Map<string, T>()
  for (const record of batch) {
    const key = `${record.topic}\0${record.partition}`
    const seen = last.get(key)
    if (!seen || seen.offset < record.offset) last.set(key, record)
  }
  return [...last.values()]
}

function isFatal(error: unknown): boolean {
  return error instanceof FatalHandlerError || !isRetriableKafkaError(error)
}
