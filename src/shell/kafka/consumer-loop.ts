import { setImmediate as nextTurn } from 'node:timers/promises'
import { Consumer, FetchIsolationLevels, type ClusterMetadata, type MessageRecord, type MessagesStream } from '@platformatic/kafka'
import type { Logger } from '../log.ts'
import { sleep } from '../backoff.ts'
import { retryWithBackoff, StoppedWaiting } from '../retry.ts'
import { clientOptions, type KafkaConnection } from './connection.ts'
import { describe, isRetriableKafkaError, isUnstableOffsets, kafkaSetupError } from './connection-errors.ts'
import { assertReadCommittedCorrected } from './read-committed.ts'
import { beginTransaction, type KpipeProducer, type KpipeTransaction } from './producer.ts'
import { recordKeyPartition } from './partitioner.ts'
import { consumerLag, recordsIn, recordsOut } from '../observability/prometheus.ts'
import { rawDeserializers, type ConsumedRecord, type OutputRecord } from './records.ts'

export type Delivery = 'at-least-once' | 'exactly-once'

export interface BatchContext {
  /** 0 the first time a batch is handed over, then 1, 2, … when the handler asked for a retry */
  attempt: number
  /** what the handler wants back when the batch is committed (e.g. its counts), instead of a stash of its own */
  carry?: unknown
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
  /**
   * Exactly-once only: more transactional producers (each a transactional id of its own).
   * Consecutive transactions then go to `producer` and these in turn. The coordinator is still
   * writing the markers of a transaction it has just committed, and the next transaction of the
   * same id is answered CONCURRENT_TRANSACTIONS until it is done (and waits 20 ms, connection.ts):
   * another id does not wait. Of two committed offsets of a partition the group coordinator keeps
   * the one written last. With `pipeline`, consecutive transactions overlap
   * (#overlappedTransaction): one commits while the next one's outputs go out, and with three
   * producers or more the one after that begins meanwhile; otherwise they run one at a time.
   * Either way outputs keep their order, and offsets are committed in order.
   */
  moreProducers?: KpipeProducer[]
  delivery?: Delivery
  /** where a group with no committed offset starts */
  from?: 'earliest' | 'latest'
  maxBatchSize?: number
  /** handler errors for which the same batch is retried with backoff (e.g. the database is down); others stop the loop */
  isRetriable?: (error: unknown) => boolean
  /**
   * called once a batch's outputs are acknowledged and its offsets committed, once per handler
   * call (a pipelined batch is handed over in slices), with the number of records of that call and
   * its context. The records themselves are not kept until then (they are let go once handled):
   * what the stage wants of them at the commit, it carries in `context.carry`.
   */
  onCommitted?: (records: number, context: BatchContext) => void
  /**
   * Handle the next batch while the one before is being written and committed (depth 1): the
   * handler of batch n + 1 runs during batch n's acks and commit (or transaction). Under
   * at-least-once, and under exactly-once with more producers, batch n + 1's outputs are
   * written once batch n's are acknowledged, while batch n's offsets (its transaction) are being
   * committed; its periodic records only once batch n is committed (so they count it), and its
   * offsets after batch n's. Under exactly-once with one producer, batch n + 1 is written only
   * once batch n is committed. So writes, commits and transactions each stay in order, and
   * offsets are committed only after every output of the batch and of the batches before it is
   * acknowledged (under exactly-once, committed). Only for a handler without side effects of its own (it computes the
   * outputs, nothing else): a handler that writes elsewhere would do so before the batch before
   * it is committed (default: false).
   */
  pipeline?: boolean
  /**
   * With `pipeline`: the handler gets a batch in slices of at most this many records, and the loop
   * lets the event loop turn between them (default 500). One long synchronous handler call held
   * back the batch in flight, whose acknowledgements and commit each need the main thread: with
   * the batch in one piece, pipelining gained nothing (docs/benchmarks.md).
   */
  pipelineSlice?: number
  /**
   * Exactly-once with overlapped transactions (`pipeline` and `moreProducers`): the most batches
   * one transaction carries (default 1). The batches the loop handles next join the transaction
   * the one before began, until it has this many; it commits then, or as soon as the loop finds
   * no batch ready (it never waits for input); the next one begins once it has written its
   * outputs. Fewer transactions at the same batch size: each costs its requests and markers
   * whatever it holds (docs/decisions.md, "Exactly-once: two batches per transaction"). Each
   * batch's outputs are let go once acknowledged, so that a transaction holds one batch's at a time
   * ("Exactly-once: three batches per transaction, each let go once acknowledged").
   */
  batchesPerTransaction?: number
  /**
   * How much is read ahead of the loop: the consumer's fetches of at most `fetchBytes` (default
   * 2 MiB), and room in its stream for `records` decoded records (default maxBatchSize) before it
   * stops fetching. A fetch's records all go into the stream, so up to `records` plus one fetch
   * wait there. Less read ahead holds less in memory; the loop must still find a batch ready when
   * it asks (docs/benchmarks.md, "The processor reads less ahead").
   */
  readAhead?: { fetchBytes?: number; records?: number }
  /** read only committed records of transactional producers (default: true) */
  readCommitted?: boolean
  sessionTimeoutMs?: number
  /** names the stage in the Prometheus counters: records in, records out, consumer lag; nothing is counted without it */
  part?: string
  /** the `outcome` label of records out, per output topic (default "output") */
  outcomes?: Record<string, string>
  /**
   * The stage's periodic records (summaries, metrics). Asked after every batch: what it returns
   * goes out with the batch's outputs (same producer; under exactly-once, the same transaction).
   * Asked every `everyMs` while no batch comes, and once more at a graceful stop (`final`).
   */
  punctuation?: Punctuation
  /**
   * Offsets the stage keeps itself (e.g. in PostgreSQL, with its rows), asked for every
   * partition at each assignment: the loop starts each partition there and skips records
   * before it. Keys are `topic\0partition`; a partition the stage has none for starts where
   * the group's committed offset (or `from`) says.
   */
  startingOffsets?: (partitions: TopicPartition[]) => Promise<Map<string, bigint>>
  /** false: the stage commits its offsets itself, together with its own writes; the loop commits nothing to Kafka (default: true) */
  commitOffsets?: boolean
}

export interface TopicPartition {
  topic: string
  partition: number
}

export interface PartitionLag extends TopicPartition {
  lag: number
}

export interface PunctuationContext {
  now: number
  /** consumer lag per assigned partition, as last measured (the loop measures it about every `everyMs`) */
  lag: PartitionLag[]
  /** the stage is stopping: the last chance to publish */
  final: boolean
}

export interface Punctuation {
  everyMs: number
  records(context: PunctuationContext): OutputRecord[]
  /**
   * Whether `records` would give any at `now`. Pipelined at-least-once, a batch's outputs then go
   * out without waiting for the offset commits under way, and only a batch that brings periodic
   * records waits for them (so that those records count what is committed). Without it, every
   * batch waits for the commit of the batch before.
   */
  due?(now: number): boolean
}

const partitionKey = (topic: string, partition: number) => `${topic}\0${partition}`

/** One handler call: how many records it had, and the context it handled them in. */
interface HandledPart {
  records: number
  context: BatchContext
}

/**
 * What the loop keeps of a handled batch until it is committed: not its records (they are let go
 * once handled, so that they die young instead of being promoted while the batch is written and
 * committed; docs/benchmarks.md, "Memory, again"), only what its commit and its counting need.
 */
interface Receipt {
  records: number
  /** the last record of each partition: its offset is committed (and, in a transaction, its group metadata names the group) */
  lasts: ConsumedRecord[]
  /** records per input topic, for the counter of records in */
  inputs: Map<string, number>
  /** the handler calls the batch took (one, or its slices) */
  parts: HandledPart[]
}

/** A batch the handler has turned into outputs. */
interface Handled {
  receipt: Receipt
  /** until they are acknowledged for good (an overlapped transaction then lets them go) */
  outputs: OutputRecord[]
}

/**
 * A batch being written and committed while the loop handles the next one. Its failure is held
 * here (never an unhandled rejection) and thrown where the loop waits for it.
 */
class InFlight {
  settled = false
  failed = false
  error: unknown
  /** settles when the batch is committed or has failed; never rejects */
  readonly done: Promise<void>
  /** resolves when the batch's outputs (and periodic records) are acknowledged, or it has settled; never rejects */
  readonly sent: Promise<void>

  constructor(work: Promise<void>, sent?: Promise<void>) {
    this.done = work.then(() => {
      this.settled = true
    }, (error: unknown) => {
      this.error = error
      this.failed = true
      this.settled = true
    })
    this.sent = sent ? Promise.race([sent, this.done]) : this.done
  }

  async result(): Promise<void> {
    await this.done
    if (this.failed) throw this.error
  }
}

/**
 * An overlapped transaction that further batches may still join (ConsumerLoopOptions.batchesPerTransaction):
 * the loop adds them, or closes it; the transaction writes each as it comes and commits once closed.
 */
class OpenTransaction {
  /** the batches it carries: the one that began it first */
  readonly joined: Handled[]
  closed = false
  #wake: (() => void) | undefined

  constructor(first: Handled, readonly room: number) {
    this.joined = [first]
  }

  /** the batch goes out in this transaction; the last one it has room for closes it */
  join(handled: Handled): void {
    this.joined.push(handled)
    if (this.joined.length >= this.room) this.closed = true
    this.#woken()
  }

  /** no more batches: the transaction commits once what it has is written */
  close(): void {
    this.closed = true
    this.#woken()
  }

  /** resolves when a batch joins or the transaction is closed */
  changed(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve
    })
  }

  #woken(): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }
}

/** A handler error the loop must not retry: the loop stops without committing the batch. */
export class FatalHandlerError extends Error {
  override name = 'FatalHandlerError'
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause))
  }
}

/**
 * A transaction failed and its abort failed too: whether it commits is up to the coordinator.
 * The batch must not be written again in another transaction; the session starts over.
 */
export class UnresolvedTransaction extends Error {
  override name = 'UnresolvedTransaction'
  constructor(override readonly cause: unknown, readonly abortError: unknown) {
    super(`transaction failed (${describe(cause)}) and its abort failed (${describe(abortError)}); its outcome is left to the coordinator`)
  }
}

/** Overlapped transactions: the transaction before this one failed, so this one is aborted (`cause`: its failure). */
class PredecessorFailed extends Error {
  override name = 'PredecessorFailed'
  constructor(override readonly cause: unknown) {
    super(`the transaction before failed (${describe(cause)})`)
  }
}

/** the value of the placeholder records that name a partition to `Transaction.addPartitions` (it reads only topic and partition) */
const NO_VALUE = Buffer.alloc(0)
const WRITE_ATTEMPTS = 6
/** how long leaving the group may take at shutdown before the loop moves on */
const CLOSE_BUDGET_MS = 3000
const FETCH_MAX_BYTES = 2 * 1024 * 1024
const PIPELINE_SLICE = 500
/**
 * The loop's warning when its consumer was still refused its group's committed offsets after
 * waiting for them (STABLE_OFFSETS_WAIT_MS, client-correction.ts): a transaction holds them.
 */
export const UNSTABLE_OFFSETS = "the group's committed offsets are held by a transaction not yet complete (one a stopped process left open, until the broker aborts it, or another member's still committing)"

/** the most records one batch holds, unless a stage says otherwise */
export const DEFAULT_MAX_BATCH_SIZE = 5000

/**
 * The one consumer loop of kpipe: fetch a batch → hand it to the handler → write its outputs
 * (acks=all) → commit the batch's offsets. Offsets are committed only after every output is
 * acknowledged; in exactly-once mode outputs and offsets are committed in one Kafka
 * transaction. A lost connection is retried with backoff from the last committed offset.
 * With `pipeline`, the next batch is handled while the one before is written and committed;
 * writes and commits stay one batch at a time, in order.
 * `stop()` stops fetching, lets the batch in flight finish and commit, then leaves the group.
 */
export class ConsumerLoop {
  readonly #options: Required<Pick<ConsumerLoopOptions, 'delivery' | 'from' | 'maxBatchSize' | 'batchesPerTransaction' | 'readCommitted' | 'sessionTimeoutMs'>> & ConsumerLoopOptions
  readonly #stop = new AbortController()
  #consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer> | undefined
  /** next offset to handle per partition, as committed (for the lag, and to skip what the stage already has) */
  readonly #next = new Map<string, { topic: string; partition: number; next: bigint }>()
  /** set at each assignment, when the stage keeps its own offsets */
  #reassigned = false
  #nextPunctuation = 0
  #lag: PartitionLag[] = []
  #lagQuery: Promise<void> | undefined
  #lastLagAt = 0
  /** a transaction was neither committed nor aborted for sure: resolved before the next session reads offsets */
  #unresolvedTransaction = false
  /** transactions begun: with more producers, the one of the next is this modulo their count */
  #transactions = 0
  /** partitions per output topic, from the producer's metadata, this session (0: not known; sendChunks counts the topic whole) */
  readonly #partitionCounts = new Map<string, number>()
  /**
   * At-least-once, pipelined: the offset commits under way, with what follows each (its batches
   * counted, `onCommitted`), while the next batches' outputs go out; settled once every batch
   * written is committed. Never rejects: a failure of what follows a commit is kept in
   * #commitFailure and thrown by #commits().
   */
  #committing: Promise<void> = Promise.resolve()
  #commitFailure: { error: unknown } | undefined
  /** batches whose outputs are acknowledged, in order, waiting for the commit under way to end: the next commit takes them all */
  #toCommit: { receipt: Receipt; written: Map<string, number> }[] = []
  #commitRunning = false
  /** the topics of the periodic records written so far (overlapped transactions add their partitions ahead) */
  readonly #periodicTopics = new Set<string>()
  /** assigned partitions as the group coordinator last told us */
  assignments: { topic: string; partitions: number[] }[] = []
  batches = 0
  records = 0

  constructor(options: ConsumerLoopOptions) {
    this.#options = {
      delivery: 'at-least-once',
      from: 'earliest',
      maxBatchSize: DEFAULT_MAX_BATCH_SIZE,
      batchesPerTransaction: 1,
      readCommitted: true,
      sessionTimeoutMs: 10_000,
      ...options,
    }
    if (this.#options.delivery === 'exactly-once' && !this.#options.producer) {
      throw new Error('exactly-once delivery needs a transactional producer')
    }
    if (this.#options.moreProducers?.length && this.#options.delivery !== 'exactly-once') {
      throw new Error('more producers take transactions in turn: exactly-once delivery only')
    }
    if (this.#options.readCommitted) assertReadCommittedCorrected()
    if (this.#options.delivery === 'exactly-once' && this.#options.commitOffsets === false) {
      throw new Error('exactly-once delivery commits the offsets in the transaction; a stage that commits its own cannot use it')
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
        what: (error) => (isUnstableOffsets(error) ? UNSTABLE_OFFSETS : 'Kafka unavailable'),
        log: this.#options.log,
        signal: this.#stop.signal,
        retriable: (error) => !isFatal(error, this.#options.connection),
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
    await this.#resolveTransactions()
    // asked again each session: a topic may have been given more partitions
    this.#partitionCounts.clear()
    // the consumer's and its stream's alike: under read_committed the consumer also reads the
    // group's committed offsets once stable (src/shell/kafka/client-correction.ts)
    const isolationLevel = o.readCommitted ? FetchIsolationLevels.READ_COMMITTED : FetchIsolationLevels.READ_UNCOMMITTED
    const consumer = new Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>({
      ...clientOptions(o.connection, `${o.connection.clientId}-consumer`),
      groupId: o.groupId,
      deserializers: rawDeserializers,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(o.sessionTimeoutMs / 3)),
      rebalanceTimeout: o.sessionTimeoutMs * 2,
      isolationLevel,
    })
    this.#consumer = consumer
    consumer.on('consumer:group:join', (payload: { assignments?: { topic: string; partitions: number[] }[] }) => {
      this.assignments = payload.assignments ?? []
      this.#reassigned = o.startingOffsets !== undefined
      o.log.debug({ assignments: this.assignments }, 'partitions assigned')
    })
    let stream: MessagesStream<Buffer | undefined, Buffer | undefined, string, Buffer> | undefined
    let inFlight: InFlight | undefined
    // overlapped transactions: the one more batches may still join
    let open: OpenTransaction | undefined
    try {
      stream = await consumer.consume({
        topics: o.topics,
        mode: 'committed',
        fallbackMode: o.from,
        autocommit: false,
        maxWaitTime: 500,
        // By default fetches of 2 MiB (about two batches of 5,000 login events) and room in the
        // stream for one batch: the next fetch runs while a batch is handled, and no more is decoded
        // than the loop takes (the client's 10 MB default decoded ~50,000 records at once: GC took a
        // fifth of the profile, peak RSS ~370 MB). A stage may read less ahead (`readAhead`).
        maxBytes: o.readAhead?.fetchBytes ?? FETCH_MAX_BYTES,
        highWaterMark: o.readAhead?.records ?? o.maxBatchSize,
        isolationLevel,
      })
      let streamError: unknown
      stream.on('error', (error: unknown) => {
        streamError = error
      })
      // Keep a 'readable' listener attached for the stream's life: when the last one is removed,
      // Node sets readableFlowing back to null, and the client then never fetches again once its
      // buffer has been full (the loop stalled after some 45k records).
      stream.on('readable', () => {})
      this.#nextPunctuation = Date.now() + (o.punctuation?.everyMs ?? 0)
      const overlapped = this.#overlapsTransactions
      // overlapped transactions: the last one of each producer
      const lastOf = new Map<KpipeProducer, InFlight>()
      const closeOpen = () => {
        open?.close()
        open = undefined
      }
      // the batch written while the next is handled (pipeline): batch n's failure is thrown here,
      // before anything of batch n + 1 is written; its outputs are dropped, and it is read again
      // from the committed offsets by the next session (its counts were never applied)
      const settle = async () => {
        closeOpen()
        const writing = inFlight
        inFlight = undefined
        if (writing) await writing.result()
      }
      while (!this.stopping) {
        // no batch ready: the open transaction commits with what it has instead of waiting for one
        let batch = await this.#nextBatch(stream, () => streamError, () => inFlight, closeOpen)
        if (inFlight?.settled) await settle()
        if (this.#reassigned) {
          await settle()
          await this.#commits()
          await this.#seekToStageOffsets(stream)
        }
        if (o.startingOffsets && batch.length > 0) batch = this.#unseen(batch)
        if (batch.length > 0) {
          const handled = await this.#handle(batch)
          // the records are handled: let go of them (the receipt keeps what their commit needs)
          batch = []
          if (overlapped && open && !inFlight?.settled) {
            // the transaction the batch before began has room: this batch goes out in it
            open.join(handled)
            if (open.closed) open = undefined
          } else if (overlapped) {
            closeOpen()
            // Transactions of several batches: the next begins once the one before has written its
            // outputs. Otherwise the loop ran a transaction further ahead (as many as there are
            // producers, each with its batches waiting): 35–50 MB more at the peak for a few per cent
            // more rate (docs/benchmarks.md, "Exactly-once: two batches per transaction").
            if (o.batchesPerTransaction > 1) await inFlight?.sent
            // As many transactions under way as there are producers: this batch's begins once the
            // last one of its producer has ended; its outputs go out once those of the one in
            // flight are acknowledged (#overlappedTransaction).
            const producer = this.#nextProducer()
            const last = lastOf.get(producer)
            await last?.done
            if (inFlight?.settled || last?.failed) await settle()
            const before = inFlight
            let markSent!: () => void
            const sent = new Promise<void>((resolve) => {
              markSent = resolve
            })
            const joinable = o.batchesPerTransaction > 1 ? new OpenTransaction(handled, o.batchesPerTransaction) : undefined
            inFlight = new InFlight(this.#overlappedTransaction(consumer, handled, producer, before, markSent, joinable).then(() => onProgress()), sent)
            lastOf.set(producer, inFlight)
            open = joinable
          } else {
            await settle()
            if (o.pipeline) inFlight = new InFlight(this.#write(consumer, handled).then(() => onProgress()))
            else {
              await this.#write(consumer, handled)
              onProgress()
            }
          }
        } else if (o.punctuation && Date.now() >= this.#nextPunctuation) {
          await settle()
          await this.#commits()
          await this.#writeAlone(consumer, this.#punctuate(false))
        }
      }
      // stopping: the batch in flight finishes and commits first
      await settle()
      await this.#commits()
      // a graceful stop: the stage's last periodic records (a final summary), bounded
      if (o.punctuation) {
        const last = this.#punctuate(true)
        await Promise.race([this.#writeAlone(consumer, last).catch((error: unknown) => o.log.warn({ err: error }, `the last ${last.length} periodic record(s) were not written (${describe(error)})`)), sleep(CLOSE_BUDGET_MS)])
      }
    } finally {
      // A session ended by an error while a batch was being written: that batch ends first (its
      // write retries bound it), so that one batch at most is ever written, also across sessions.
      open?.close()
      if (inFlight) {
        await inFlight.done
        if (inFlight.failed) o.log.debug({ err: inFlight.error }, 'the batch in flight failed too')
      }
      // and its offset commit (at-least-once, pipelined) before the consumer closes
      await this.#commits().catch((error: unknown) => o.log.debug({ err: error }, 'what followed an offset commit failed'))
      this.#consumer = undefined
      // Everything handled is committed by now: closing must not wait on requests to a broker
      // that is gone (the client retries them for up to a minute), so each step is bounded.
      if (stream) await Promise.race([stream.close().catch(() => {}), sleep(CLOSE_BUDGET_MS)])
      await Promise.race([new Promise<void>((resolve) => consumer.close(true, () => resolve())), sleep(CLOSE_BUDGET_MS)])
    }
  }

  /**
   * Whatever the stream has buffered, up to maxBatchSize; waits for at least one record. Returns
   * empty when the batch in flight has failed (the loop then throws its error).
   */
  async #nextBatch(stream: MessagesStream<Buffer | undefined, Buffer | undefined, string, Buffer>, error: () => unknown, inFlight: () => InFlight | undefined, idle: () => void): Promise<ConsumedRecord[]> {
    for (;;) {
      if (this.stopping || inFlight()?.failed) return []
      const failure = error()
      if (failure) throw failure
      const batch: ConsumedRecord[] = []
      let record: ConsumedRecord | null
      while (batch.length < this.#options.maxBatchSize && (record = stream.read() as ConsumedRecord | null) !== null) batch.push(record)
      if (batch.length > 0) return batch
      if (stream.destroyed || stream.readableEnded) throw new Error('the consumer stream ended')
      // the stage's punctuation is due: an empty batch lets the loop write it
      if (this.#options.punctuation && Date.now() >= this.#nextPunctuation) return batch
      idle()
      await new Promise<void>((resolve) => {
        const punctuation = this.#options.punctuation ? setTimeout(wake, Math.max(0, this.#nextPunctuation - Date.now())) : undefined
        function wake(this: void) {
          clearTimeout(punctuation)
          stream.off('readable', wake)
          stream.off('error', wake)
          stream.off('close', wake)
          stopSignal.removeEventListener('abort', wake)
          resolve()
        }
        const stopSignal = this.#stop.signal
        stream.on('readable', wake)
        stream.on('error', wake)
        stream.on('close', wake)
        stopSignal.addEventListener('abort', wake, { once: true })
        // a batch in flight that fails wakes the loop at once: the session ends without waiting for input
        const writing = inFlight()
        if (writing && !writing.settled) void writing.done.then(wake)
      })
    }
  }

  /** After an assignment: each partition continues from the offset the stage keeps, where it has one. */
  async #seekToStageOffsets(stream: MessagesStream<Buffer | undefined, Buffer | undefined, string, Buffer>): Promise<void> {
    this.#reassigned = false
    const partitions = this.assignments.flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition })))
    const offsets = await this.#options.startingOffsets!(partitions)
    for (const { topic, partition } of partitions) {
      const offset = offsets.get(partitionKey(topic, partition))
      if (offset === undefined) continue
      this.#next.set(partitionKey(topic, partition), { topic, partition, next: offset })
      // the next fetch of this partition starts there; records already fetched before it are skipped by #unseen
      stream.offsetsToFetch.set(`${topic}:${partition}`, offset)
    }
  }

  /** The records of a batch the stage does not have yet (its own offsets said where it stands). */
  #unseen(batch: ConsumedRecord[]): ConsumedRecord[] {
    return batch.filter((r) => {
      const next = this.#next.get(partitionKey(r.topic, r.partition))?.next
      return next === undefined || r.offset >= next
    })
  }

  /** The stage's periodic records now; measures the lag again when it is older than the punctuation interval. */
  #punctuate(final: boolean): OutputRecord[] {
    const punctuation = this.#options.punctuation
    if (!punctuation) return []
    const now = Date.now()
    this.#nextPunctuation = now + punctuation.everyMs
    this.#measureLagEvery(punctuation.everyMs, now)
    return punctuation.records({ now, lag: this.#lag, final })
  }

  /** The lag is measured again when older than `everyMs` (so the periodic records have it about as fresh). */
  #measureLagEvery(everyMs: number, now: number): void {
    if (now - this.#lastLagAt >= everyMs) this.#refreshLag()
  }

  /** Periodic records with no batch: one send (at-least-once) or one transaction without offsets (exactly-once). */
  async #writeAlone(consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>, records: OutputRecord[]): Promise<void> {
    if (records.length === 0) return
    if (this.#options.delivery === 'exactly-once') await this.#writeTransaction(consumer, [], records)
    else await this.#writeOutputs(records)
    this.#countOut(tally(records))
  }

  /** Lag per assigned partition: the end offset minus the next offset to handle (or the committed one, before the first batch). */
  async lag(): Promise<PartitionLag[]> {
    const consumer = this.#consumer
    if (!consumer || this.assignments.length === 0) return []
    const topics = this.assignments.map((a) => a.topic)
    const ends = await consumer.listOffsets({ topics })
    let committed: Map<string, bigint[]> | undefined
    const lag: PartitionLag[] = []
    for (const { topic, partitions } of this.assignments) {
      for (const partition of partitions) {
        let next = this.#next.get(partitionKey(topic, partition))?.next
        if (next === undefined) {
          committed ??= await consumer.listCommittedOffsets({ topics: this.assignments.map((a) => ({ topic: a.topic, partitions: a.partitions })) })
          const c = committed.get(topic)?.[partition]
          next = c !== undefined && c >= 0n ? c : 0n
        }
        const end = ends.get(topic)?.[partition]
        if (end !== undefined) lag.push({ topic, partition, lag: Math.max(0, Number(end - next)) })
      }
    }
    return lag
  }

  /** Measures the lag in the background (one query at a time); the stage's punctuation gets the latest figures. */
  #refreshLag(): void {
    this.#lastLagAt = Date.now()
    const part = this.#options.part
    if (this.#lagQuery) return
    this.#lagQuery = this.lag()
      .then((lag) => {
        this.#lag = lag
        if (part) for (const l of lag) consumerLag.set({ part, topic: l.topic, partition: String(l.partition) }, l.lag)
      }, (error: unknown) => this.#options.log.debug({ err: error }, 'consumer lag not available'))
      .finally(() => {
        this.#lagQuery = undefined
      })
  }

  /** `inputs`: records per input topic */
  #countIn(inputs: Map<string, number>): void {
    const part = this.#options.part
    if (!part) return
    for (const [topic, n] of inputs) recordsIn.inc({ part, topic }, n)
  }

  /** `written`: records per output topic */
  #countOut(written: Map<string, number>): void {
    const part = this.#options.part
    if (!part) return
    const outcomes = this.#options.outcomes ?? {}
    for (const [topic, n] of written) recordsOut.inc({ part, topic, outcome: outcomes[topic] ?? 'output' }, n)
  }

  /**
   * The handler's outputs for a batch. Pipelined, the batch goes to the handler in slices, with a
   * turn of the event loop between them, so that the batch in flight moves on meanwhile.
   */
  async #handle(batch: ConsumedRecord[]): Promise<Handled> {
    const o = this.#options
    const slice = o.pipeline ? Math.max(1, o.pipelineSlice ?? PIPELINE_SLICE) : batch.length
    const receipt: Receipt = { records: batch.length, lasts: lastPerPartition(batch), inputs: tally(batch), parts: [] }
    if (batch.length <= slice) {
      const part = await this.#handlePart(batch)
      receipt.parts.push({ records: batch.length, context: part.context })
      return { receipt, outputs: part.outputs }
    }
    const outputs: OutputRecord[] = []
    for (let i = 0; i < batch.length; i += slice) {
      if (i > 0) await nextTurn()
      const records = batch.slice(i, i + slice)
      const part = await this.#handlePart(records)
      for (const output of part.outputs) outputs.push(output)
      receipt.parts.push({ records: records.length, context: part.context })
    }
    return { receipt, outputs }
  }

  /** One handler call (handler errors retried as the stage says): its outputs, and the context it ran in. */
  async #handlePart(batch: ConsumedRecord[]): Promise<{ outputs: OutputRecord[]; context: BatchContext }> {
    const o = this.#options
    let context: BatchContext = { attempt: 0 }
    const outputs = await retryWithBackoff((attempt) => {
      context = { attempt: attempt.number - 1 }
      return Promise.resolve(o.handler(batch, context))
    }, {
      what: `batch of ${batch.length} not handled`,
      suffix: ', nothing committed',
      log: o.log,
      signal: this.#stop.signal,
      retriable: (error) => o.isRetriable?.(error) === true,
      fatal: (error) => new FatalHandlerError(error),
    })
    return { outputs, context }
  }

  /**
   * Writes a handled batch and commits it: its outputs (acks=all) then its offsets, or both in
   * one transaction. Only once the batch before it is written (and, but for pipelined
   * at-least-once, committed): the periodic records made here count what is committed.
   */
  async #write(consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>, handled: Handled): Promise<void> {
    const o = this.#options
    const { receipt } = handled
    if (o.delivery === 'at-least-once' && o.pipeline && o.commitOffsets !== false) {
      // Pipelined at-least-once: the outputs go out while the batches before are still being
      // committed; this batch's offsets are committed after theirs, once its outputs (and those
      // of every batch before) are acknowledged. When periodic records are due, they are made
      // once every batch before is committed, so that they count them, and go out after the
      // outputs; otherwise nothing here waits for a commit (a commit took ~6 ms, the broker's
      // group coordinator lingering 5 ms, and at low rates it set the pace of every batch).
      if (this.#commitFailure) await this.#commits()
      await this.#writeOutputs(handled.outputs)
      // acknowledged (a failure from here on ends the session): only their counts are kept
      const written = tally(handled.outputs)
      handled.outputs = []
      const now = Date.now()
      if (o.punctuation && (o.punctuation.due?.(now) ?? true)) {
        await this.#commits()
        const periodic = this.#punctuate(false)
        await this.#writeOutputs(periodic)
        tally(periodic, written)
      } else if (o.punctuation) {
        this.#measureLagEvery(o.punctuation.everyMs, now)
      }
      this.#commitLater(consumer, receipt, written)
      return
    }
    // the stage's periodic records go out with the batch: same producer, same transaction
    const periodic = o.punctuation ? this.#punctuate(false) : []
    const all = periodic.length > 0 ? handled.outputs.concat(periodic) : handled.outputs
    if (o.delivery === 'exactly-once') await this.#writeTransaction(consumer, receipt.lasts, all)
    else {
      await this.#writeOutputs(all)
      if (o.commitOffsets !== false) await this.#commit(consumer, receipt.lasts)
    }
    this.#counted(receipt, tally(all))
  }

  /**
   * Pipelined at-least-once: the batch's offsets are committed once the commit under way has
   * ended, together with those of every batch written meanwhile (one commit for them all, as a
   * consumer that commits the latest offsets does), and the batches are counted in order.
   */
  #commitLater(consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>, receipt: Receipt, written: Map<string, number>): void {
    this.#toCommit.push({ receipt, written })
    if (this.#commitRunning) return
    this.#commitRunning = true
    this.#committing = (async () => {
      try {
        while (this.#toCommit.length > 0) {
          const batches = this.#toCommit
          this.#toCommit = []
          // batches in order: the last record of each partition over them all is what one commit commits
          await this.#commit(consumer, batches.length === 1 ? batches[0]!.receipt.lasts : lastPerPartition(batches.flatMap((b) => b.receipt.lasts)))
          for (const { receipt, written } of batches) {
            try {
              this.#counted(receipt, written)
            } catch (error) {
              this.#commitFailure ??= { error }
            }
          }
        }
      } finally {
        this.#commitRunning = false
      }
    })().catch((error: unknown) => {
      this.#commitFailure ??= { error }
    })
  }

  /** Every offset commit under way (at-least-once, pipelined) has ended; throws if what followed one failed. */
  async #commits(): Promise<void> {
    await this.#committing
    const failure = this.#commitFailure
    this.#commitFailure = undefined
    if (failure) throw failure.error
  }

  /** A batch is committed: its figures, its partitions' next offsets, its counters (`written`: records out per topic), and the stage told. */
  #counted(receipt: Receipt, written: Map<string, number>): void {
    const o = this.#options
    this.batches++
    this.records += receipt.records
    for (const last of receipt.lasts) this.#next.set(partitionKey(last.topic, last.partition), { topic: last.topic, partition: last.partition, next: last.offset + 1n })
    this.#countIn(receipt.inputs)
    this.#countOut(written)
    if (o.onCommitted) for (const part of receipt.parts) o.onCommitted(part.records, part.context)
  }

  async #writeOutputs(outputs: OutputRecord[]): Promise<void> {
    if (outputs.length === 0) return
    const producer = this.#options.producer
    if (!producer) throw new FatalHandlerError(new Error('the handler returned records but the loop has no producer'))
    const partitionsOf = await this.#partitionsOf(outputs)
    for (const chunk of sendChunks(outputs, MAX_SEND_BYTES, partitionsOf)) await this.#withRetries('write outputs', () => producer.send({ messages: chunk }))
  }

  /**
   * The partition count of each output topic, for sendChunks: asked of the producer's metadata
   * once per topic and session. A topic it cannot tell (yet) is counted whole this session.
   */
  async #partitionsOf(outputs: OutputRecord[]): Promise<(topic: string) => number | undefined> {
    const counts = this.#partitionCounts
    let unknown: Set<string> | undefined
    for (const output of outputs) if (!counts.has(output.topic)) (unknown ??= new Set()).add(output.topic)
    if (unknown) {
      try {
        const metadata = await this.#options.producer!.metadata({ topics: [...unknown] })
        for (const topic of unknown) counts.set(topic, metadata.topics.get(topic)?.partitionsCount ?? 0)
      } catch (error) {
        this.#options.log.debug({ err: error }, `partition counts not available (${describe(error)}); bytes counted per topic`)
      }
      for (const topic of unknown) if (!counts.has(topic)) counts.set(topic, 0)
    }
    return (topic) => counts.get(topic) || undefined
  }

  /** Commits the offsets after `lasts`, the last record of each partition of a batch. */
  async #commit(consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>, lasts: ConsumedRecord[]): Promise<void> {
    const offsets = lasts.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset + 1n, leaderEpoch: -1 }))
    try {
      await consumer.commit({ offsets })
    } catch (error) {
      // The outputs are written; an uncommitted offset only means this batch may be read again
      // (at-least-once). A rebalance is the usual cause; the next commit covers it.
      this.#options.log.warn({ err: error }, `offset commit failed (${describe(error)}); the batch may be delivered again`)
    }
  }

  /** One transaction: `outputs`, and the offsets after `lasts` (the last record of each partition of the batch; none for periodic records alone). */
  async #writeTransaction(consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>, lasts: ConsumedRecord[], outputs: OutputRecord[]): Promise<void> {
    const producer = this.#nextProducer()
    const partitionsOf = await this.#partitionsOf(outputs)
    await this.#withRetries('commit transaction', async () => {
      const tx = await beginTransaction(producer)
      try {
        if (lasts.length > 0) await tx.addConsumer(consumer)
        for (const chunk of sendChunks(outputs, MAX_SEND_BYTES, partitionsOf)) await tx.send({ messages: chunk })
        // one partition after another: the client (2.12.1) answers an addOffset asked while another
        // is under way with that one's result, and never sends it (docs/upstream/concurrent-add-offset.md)
        for (const last of lasts) await tx.addOffset(last)
        await tx.commit()
      } catch (error) {
        throw await this.#failed(tx, error)
      }
    })
  }

  /**
   * Exactly-once with more than one producer, pipelined: consecutive transactions overlap. This
   * batch's transaction begins (on `producer`, whose last transaction has ended) while the one
   * before (`before`) is still under way; its outputs go out once `before`'s are acknowledged, while
   * `before`'s offsets and commit are under way. Its periodic records are made once `before` has
   * committed, so that they count it, and its offsets are committed after `before`'s commit. So
   * outputs keep their order in every partition, and offsets are committed in order, each in the
   * transaction of its outputs. `sent` says that this batch's outputs and periodic records are
   * acknowledged: the next batch's may follow.
   *
   * With `joinable` (ConsumerLoopOptions.batchesPerTransaction) the transaction carries the batches
   * that join it too, each written once the one before it is acknowledged; it waits for them (or
   * for the loop to close it) before its periodic records, its offsets (of each partition, the last
   * batch's) and its commit. Each batch is counted once the transaction has committed, in order.
   *
   * When one fails, it and those behind it end uncommitted. A transaction is tried again in place
   * only until its first batch's outputs are acknowledged: each batch's outputs are let go then
   * (their counts kept), so that a transaction holds one batch's outputs at a time rather than all
   * of its batches'; and once a transaction's outputs are all acknowledged, the next one's may
   * already be in the log behind them. A transaction aborts when `before` fails. A transaction
   * that fails and is not tried again ends the session: the batches are read again from the
   * committed offsets.
   */
  async #overlappedTransaction(consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>, handled: Handled, producer: KpipeProducer, before: InFlight | undefined, sent: () => void, joinable?: OpenTransaction): Promise<void> {
    const { receipt } = handled
    // the batches it carries: this one, and those the loop hands it next (joinable)
    const batches = joinable?.joined ?? [handled]
    // the batch before failed: this one is not written (and not tried again here)
    const beforeFailed = () => {
      if (before?.failed) throw new PredecessorFailed(before.error)
    }
    let periodic: OutputRecord[] | undefined
    // the counts of each batch's outputs, once they are acknowledged and let go
    const written: Map<string, number>[] = []
    try {
      await this.#withRetries('commit transaction', async () => {
        const tx = await beginTransaction(producer)
        try {
          if (receipt.lasts.length > 0) await tx.addConsumer(consumer)
          // the output partitions too (and those of the periodic records so far), while the
          // transaction before is under way: the client would add them before each send, a round
          // trip to the coordinator on the way of the outputs
          await tx.addPartitions(...await this.#outputPartitions(producer, handled.outputs))
          await before?.sent
          beforeFailed()
          // its batches, each written as it comes, until the loop closes the transaction (if others may join)
          for (let next = 0; ;) {
            for (; next < batches.length; next++) {
              const outputs = batches[next]!.outputs
              for (const chunk of sendChunks(outputs, MAX_SEND_BYTES, await this.#partitionsOf(outputs))) await tx.send({ messages: chunk })
              // acknowledged: never written again (no retry in place from here), so let go while the
              // transaction goes on, and only their counts kept
              written[next] = tally(outputs)
              batches[next]!.outputs = []
            }
            if (!joinable || joinable.closed) break
            // the transaction before failing ends this one too: no waiting for a batch then
            await (before && !before.settled ? Promise.race([joinable.changed(), before.done]) : joinable.changed())
            beforeFailed()
          }
          await before?.done
          beforeFailed()
          periodic ??= this.#options.punctuation ? this.#punctuate(false) : []
          for (const record of periodic) this.#periodicTopics.add(record.topic)
          if (periodic.length > 0) for (const chunk of sendChunks(periodic, MAX_SEND_BYTES, await this.#partitionsOf(periodic))) await tx.send({ messages: chunk })
          sent()
          // the periodic records counted with the first batch
          tally(periodic, written[0])
          // one partition after another, never at once (#writeTransaction); of a partition in
          // more than one batch, the last batch's offset
          const lasts = new Map<string, ConsumedRecord>()
          for (const batch of batches) for (const last of batch.receipt.lasts) lasts.set(partitionKey(last.topic, last.partition), last)
          for (const last of lasts.values()) await tx.addOffset(last)
          await tx.commit()
        } catch (error) {
          throw await this.#failed(tx, error)
        }
      }, (error) => written.length === 0 && !(error instanceof PredecessorFailed))
      batches.forEach((batch, i) => this.#counted(batch.receipt, written[i]!))
    } catch (error) {
      // the failure of the batch before is the session's reason; an unresolved transaction of this one comes first
      throw error instanceof PredecessorFailed ? error.cause : error
    } finally {
      sent()
      // the batches settle in order: this one only once the one before has
      await before?.done
    }
  }

  /** Every partition of the topics `outputs` and the periodic records so far go to, with the producer's metadata, as `Transaction.addPartitions` takes them. */
  async #outputPartitions(producer: KpipeProducer, outputs: OutputRecord[]): Promise<[ClusterMetadata, MessageRecord[]]> {
    // a batch's thousands of outputs go to a handful of topics: the set, without an array of all their names
    const names = new Set(this.#periodicTopics)
    for (const output of outputs) names.add(output.topic)
    const topics = [...names]
    const metadata = await producer.metadata({ topics })
    const partitions = topics.flatMap((topic) => Array.from({ length: metadata.topics.get(topic)?.partitionsCount ?? 0 }, (_, partition) => ({ topic, partition, value: NO_VALUE })))
    return [metadata, partitions]
  }

  /** Exactly-once: the producer of the next transaction (with more producers, each in turn). */
  #nextProducer(): KpipeProducer {
    const producers = this.#producers
    return producers[this.#transactions++ % producers.length]!
  }

  /** Exactly-once: the transactional producers, `producer` first. */
  get #producers(): KpipeProducer[] {
    const { producer, moreProducers } = this.#options
    return [producer!, ...(moreProducers ?? [])]
  }

  /** Exactly-once, pipelined, with more than one producer: consecutive transactions overlap (#overlappedTransaction). */
  get #overlapsTransactions(): boolean {
    const o = this.#options
    return o.delivery === 'exactly-once' && o.pipeline === true && (o.moreProducers?.length ?? 0) > 0
  }

  /**
   * A transaction that failed with `error`: aborted, and the error to throw. Only an acknowledged
   * abort makes it safe to write the same outputs again. When the abort fails too (e.g. after a
   * commit whose answer was lost, or while the coordinator is unreachable), the transaction may
   * still commit, or have committed: the producer forgets it, and the session ends; the next one
   * gives the transactional id a new epoch (the coordinator then completes or aborts the old
   * transaction) before reading the committed offsets again.
   */
  async #failed(tx: KpipeTransaction, error: unknown): Promise<unknown> {
    if (tx.completed) return error
    const abortError = await tx.abort().then(() => undefined, (e: unknown) => e ?? new Error('abort failed'))
    if (abortError === undefined) return error
    await tx.cancel().catch(() => {})
    const reason = error instanceof PredecessorFailed ? error.cause : error
    // a fatal error (e.g. fenced by another process with the same id) stops the loop anyway
    if (isFatal(reason, this.#options.connection)) return error
    this.#unresolvedTransaction = true
    return new UnresolvedTransaction(reason, abortError)
  }

  /**
   * After a transaction whose outcome is unknown: a new epoch of the transactional id (of each,
   * with more producers). The coordinator completes or aborts the old transaction first, so
   * the committed offsets read next include its offsets exactly when its outputs were committed.
   */
  async #resolveTransactions(): Promise<void> {
    if (!this.#unresolvedTransaction) return
    const producers = this.#producers
    for (const p of producers) {
      // the client re-initialises the producer id only inside a transaction; the empty one is then forgotten
      const tx = await beginTransaction(p)
      try {
        await p.initIdempotentProducer({})
      } finally {
        await tx.cancel()
      }
    }
    this.#unresolvedTransaction = false
    this.#options.log.info(`${producers.length === 1 ? 'the transactional id has' : `the ${producers.length} transactional ids have`} a new epoch; the batch of the unresolved transaction is read again from the committed offsets`)
  }

  /** A write that failed for a reason other than a refused login is tried again a few times, the same records (and `also` says so). */
  async #withRetries(what: string, action: () => Promise<unknown>, also: (error: unknown) => boolean = () => true): Promise<void> {
    await retryWithBackoff(action, {
      what: `${what} failed`,
      log: this.#options.log,
      // on stop, the attempt under way may still finish the batch; no new one starts after it fails
      // an unresolved transaction ends the session: its batch is read again from the committed offsets
      retriable: (error) => !(error instanceof UnresolvedTransaction) && !isFatal(error, this.#options.connection) && !this.stopping && also(error),
      attempts: WRITE_ATTEMPTS,
      maxDelayMs: 5000,
    })
  }
}

/**
 * The client sends one record batch per partition per send, and the broker refuses batches over
 * message.max.bytes (1 MiB by default): a big handler output goes out in chunks below that. The
 * bytes are counted per partition where the loop knows the topic's partition count
 * (`partitionsOf`): a keyed record goes where the producer's partitioner will put it, murmur2 of
 * its key modulo the partitions. A record without a key goes to the partitioner's next partition
 * in turn, which is not known here, so it counts against every partition of its topic; so does
 * every record of a topic whose partition count is not known. Outputs spread over partitions and
 * topics then need fewer sends, each an acks=all round trip (and, in a transaction, one more
 * AddPartitionsToTxn for partitions the chunk before did not have).
 */
const MAX_SEND_BYTES = 768 * 1024

/** A topic's bytes in the chunk: per partition where known, and those that may land on any. */
interface TopicBytes {
  /** the topic's partition count, when known: records are then placed */
  partitions: number | undefined
  anywhere: number
  placed: Map<number, number>
  /** the most bytes of one partition in `placed` */
  most: number
}

export function* sendChunks(outputs: OutputRecord[], maxBytes = MAX_SEND_BYTES, partitionsOf?: (topic: string) => number | undefined): Generator<OutputRecord[]> {
  let start = 0
  const topics = new Map<string, TopicBytes>()
  const counted = (topic: string): TopicBytes => {
    let bytes = topics.get(topic)
    if (bytes === undefined) topics.set(topic, (bytes = { partitions: partitionsOf?.(topic), anywhere: 0, placed: new Map(), most: 0 }))
    return bytes
  }
  for (let i = 0; i < outputs.length; i++) {
    const record = outputs[i]!
    const size = approximateSize(record)
    let bytes = counted(record.topic)
    const partition = partitionOf(record, bytes.partitions)
    const fullest = partition === undefined ? bytes.most : (bytes.placed.get(partition) ?? 0)
    if (i > start && bytes.anywhere + fullest + size > maxBytes) {
      yield outputs.slice(start, i)
      start = i
      topics.clear()
      bytes = counted(record.topic)
    }
    if (partition === undefined) bytes.anywhere += size
    else {
      const placed = (bytes.placed.get(partition) ?? 0) + size
      bytes.placed.set(partition, placed)
      if (placed > bytes.most) bytes.most = placed
    }
  }
  if (start < outputs.length) yield start === 0 ? outputs : outputs.slice(start)
}

/** The partition a record will be written to, when it can be told before the send (its topic's partition count known). */
function partitionOf(record: OutputRecord, partitions: number | undefined): number | undefined {
  if (!partitions) return undefined
  // the client takes an explicit partition modulo the partitions, as it does the partitioner's
  if (typeof record.partition === 'number') return record.partition % partitions
  const key = record.key
  return key === undefined || key === null ? undefined : recordKeyPartition(key) % partitions
}

function approximateSize(record: OutputRecord): number {
  const { key, value } = record
  // 64: record overhead and the lineage headers
  return 64 + (typeof value === 'string' ? Buffer.byteLength(value) : (value?.length ?? 0)) + (typeof key === 'string' ? key.length : (key?.length ?? 0))
}

/** The last record of each topic-partition in a batch (records arrive in offset order per partition). */
export function lastPerPartition<T extends { topic: string; partition: number; offset: bigint }>(batch: T[]): T[] {
  const last = new Map<string, T>()
  // a fetch gives each partition's records one after another: the key is made only where the partition changes
  let key = ''
  let holder: T | undefined
  for (const record of batch) {
    if (holder === undefined || record.partition !== holder.partition || record.topic !== holder.topic) {
      key = `${record.topic}\0${record.partition}`
      holder = last.get(key)
      if (holder === undefined) {
        last.set(key, record)
        holder = record
        continue
      }
    }
    if (holder.offset < record.offset) {
      last.set(key, record)
      holder = record
    }
  }
  return [...last.values()]
}

/** Records per topic, added to `counts` (a new map by default). */
function tally(records: readonly { topic: string }[], counts = new Map<string, number>()): Map<string, number> {
  for (const r of records) counts.set(r.topic, (counts.get(r.topic) ?? 0) + 1)
  return counts
}

/** Fatal for the loop of `connection` (a listener of another cluster closing connections is not its concern). */
function isFatal(error: unknown, connection: KafkaConnection): boolean {
  if (error instanceof UnresolvedTransaction) return false
  return error instanceof FatalHandlerError || !isRetriableKafkaError(error, connection)
}
