import type { Server } from 'node:http'
import { availableParallelism, hostname } from 'node:os'
import type { Settings } from '../../shell/settings.ts'
import type { Logger } from '../../shell/log.ts'
import { UserError } from '../../shell/errors.ts'
import { retryWithBackoff } from '../../shell/retry.ts'
import { StageComponent } from '../../shell/stage.ts'
import { kafkaConnection, type KafkaConnection } from '../../shell/kafka/connection.ts'
import { isRetriableKafkaError, kafkaSetupError } from '../../shell/kafka/connection-errors.ts'
import { beginTransaction, createProducer, type KpipeProducer } from '../../shell/kafka/producer.ts'
import { DEFAULT_MAX_BATCH_SIZE } from '../../shell/kafka/consumer-loop.ts'
import { ensureTopics } from '../../shell/kafka/topics.ts'
import { serveMetrics } from '../../shell/observability/prometheus.ts'
import { LoginProcessor, METRICS_INTERVAL_MS } from './login-processor.ts'
import { RulesThread } from './rules-thread.ts'

export interface ProcessorRunOptions {
  settings: Settings
  log: Logger
  groupId: string
  from: 'earliest' | 'latest'
  exactlyOnce: boolean
  /** names this process in summaries and metrics; with --exactly-once also its transactional id */
  instanceId?: string
  metricsPort?: number
  /** aborting it stops the processor gracefully */
  signal: AbortSignal
  /** default: the consumer loop's, DEFAULT_MAX_BATCH_SIZE */
  maxBatchSize?: number
  /** handle the next batch, in slices, while the one before is written and committed (default true; docs/benchmarks.md) */
  pipeline?: boolean
  /**
   * apply the login rules on a thread of their own (default: when the machine has more than one
   * core and METRICS_MODE is interval; docs/decisions.md)
   */
  rulesThread?: boolean
}

export function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}`
}

/** The message a user sees when the hash key is missing: what, why, and what to do. */
export const MISSING_HASH_KEY = 'KPIPE_HASH_KEY is not set: the processor pseudonymises device ids with an HMAC under this secret key. ' +
  'Set it to a secret of at least 16 characters (e.g. export KPIPE_HASH_KEY=$(openssl rand -hex 32)) and keep it: another key gives other pseudonyms.'

/** The login processor as a stage: `user-login` → the three outputs, with summaries and metrics as its punctuation. */
export function loginProcessorStage(options: Omit<ProcessorRunOptions, 'signal' | 'metricsPort'>): { component: StageComponent; processor: LoginProcessor } {
  const { settings, log } = options
  if (!settings.KPIPE_HASH_KEY) throw new UserError(MISSING_HASH_KEY)
  const instanceId = options.instanceId ?? defaultInstanceId()
  const connection = kafkaConnection(settings, 'logins')
  const processor = new LoginProcessor(settings, instanceId)
  const thread = (options.rulesThread ?? (availableParallelism() > 1 && settings.METRICS_MODE !== 'per-message')) ? new RulesThread(processor.rules) : undefined
  const transactionalId = `kpipe-logins-${options.groupId}-${instanceId}`
  const producer = createProducer(connection, options.exactlyOnce ? { transactionalId } : {})
  // exactly-once: transactions go to three transactional ids in turn (ConsumerLoopOptions.moreProducers)
  const moreProducers = options.exactlyOnce
    ? Array.from({ length: TRANSACTIONAL_IDS - 1 }, (_, i) => createProducer(connection, { transactionalId: `${transactionalId}-${i + 2}`, clientId: `${connection.clientId}-producer-${i + 2}` }))
    : []
  const component = new StageComponent({
    name: 'logins',
    connection,
    groupId: options.groupId,
    inputs: [settings.TOPIC_LOGINS],
    handle: thread ? processor.threaded(thread) : processor.handle,
    committed: processor.committed,
    punctuation: { everyMs: METRICS_INTERVAL_MS, records: (context) => processor.periodic(context), due: (now) => processor.periodicDue(now) },
    outcomes: processor.outcomes,
    producer,
    ...(moreProducers.length > 0 ? { moreProducers, batchesPerTransaction: BATCHES_PER_TRANSACTION } : {}),
    readAhead: readAhead(options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE),
    delivery: options.exactlyOnce ? 'exactly-once' : 'at-least-once',
    from: options.from,
    // the handler only computes outputs (its counts travel in each call's context): safe to run
    // ahead; in slices, it is 15–20 % faster in both modes (docs/benchmarks.md)
    pipeline: options.pipeline ?? true,
    // with a rules thread the handler does not hold the main thread: it takes a batch whole
    ...(thread ? { pipelineSlice: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE } : {}),
    ...(options.maxBatchSize ? { maxBatchSize: options.maxBatchSize } : {}),
    log,
    ...(thread ? { close: () => thread.close() } : {}),
    prepare: async (signal) => {
      await untilReady('create topics', connection, log, signal, () => ensureLoginTopics(connection, settings))
      if (options.exactlyOnce) await untilReady('initialise transactions', connection, log, signal, () => fenceEarlierTransactions([producer, ...moreProducers]))
      log.info({ group: options.groupId, instance: instanceId, delivery: options.exactlyOnce ? 'exactly-once' : 'at-least-once' },
        `processing ${settings.TOPIC_LOGINS} → ${settings.TOPIC_PROCESSED}, ${settings.TOPIC_CLEANED}, ${settings.TOPIC_ERRORS}`)
    },
  })
  return { component, processor }
}

/**
 * `kpipe logins process`: the processor stage until the signal (a graceful stop: stop fetching,
 * finish and commit the batch in flight with the last summary, close). A stop during the
 * start-up wait for Kafka is a clean stop too. Resolves when stopped; rejects on a fatal error.
 */
export async function runProcessor(options: ProcessorRunOptions): Promise<LoginProcessor> {
  const { settings, log, signal } = options
  const { component, processor } = loginProcessorStage(options)
  let server: Server | undefined
  if (options.metricsPort !== undefined) {
    server = await serveMetrics(options.metricsPort, settings.HOST, log, () => component.ready())
  }
  try {
    await component.start(signal)
    await component.done
  } finally {
    if (server) await new Promise((resolve) => server.close(resolve))
  }
  const t = processor.total
  if (component.loop) log.info(`stopped: ${t.received} received, ${t.processed} processed, ${t.filteredTotal} filtered, ${t.errorsTotal} errors`)
  else log.info('stopped while waiting for Kafka; nothing was processed')
  return processor
}

/** The six topics of the login pipeline, created when missing (the broker's default partitions and replication). */
async function ensureLoginTopics(connection: KafkaConnection, s: Settings): Promise<void> {
  const names = [s.TOPIC_LOGINS, s.TOPIC_PROCESSED, s.TOPIC_ERRORS, s.TOPIC_CLEANED, s.TOPIC_SUMMARY, s.TOPIC_METRICS]
  await ensureTopics(connection, names.map((name) => ({ name, partitions: -1, replicationFactor: -1 })))
}

/**
 * Exactly-once: the processor's transactional ids, `kpipe-logins-<group>-<instance id>`, then with
 * `-2` and `-3`. Pipelined, a transaction commits while the next one's outputs go out and the one
 * after that begins: each id's previous transaction has ended, and its markers are written, by then
 * (docs/decisions.md).
 */
const TRANSACTIONAL_IDS = 3

/**
 * Exactly-once: a transaction carries up to three consecutive batches of 5,000
 * (ConsumerLoopOptions.batchesPerTransaction). A third of the transactions, each costing the same
 * requests and markers; each batch's outputs are let go once acknowledged, so that the peak stays
 * where it was with two (docs/decisions.md, "Exactly-once: two batches per transaction" and
 * "Exactly-once: three batches per transaction, each let go once acknowledged").
 */
const BATCHES_PER_TRANSACTION = 3

/**
 * The processor reads about one batch ahead: fetches of 1 MiB per 5,000 records of its batch
 * (login events of ~181 bytes: ~4,000–5,000 records a fetch, never less than 256 KiB), and room in
 * the consumer's stream for half a batch. Against the loop's default (fetches of 2 MiB, room for a
 * whole batch): 10–25 MB less at the peak in both modes, the rates within their spread
 * (docs/benchmarks.md, "The processor reads less ahead").
 */
export function readAhead(maxBatchSize: number): { fetchBytes: number; records: number } {
  return { fetchBytes: Math.max(256 * 1024, Math.ceil(maxBatchSize * 1024 * 1024 / DEFAULT_MAX_BATCH_SIZE)), records: Math.ceil(maxBatchSize / 2) }
}

/**
 * Initialising the transactional ids completes or aborts whatever an earlier process with the
 * same ids left open (e.g. killed mid-transaction), before the consumer reads committed offsets:
 * otherwise it could read offsets from before that transaction's commit and process it again.
 */
async function fenceEarlierTransactions(producers: KpipeProducer[]): Promise<void> {
  for (const producer of producers) {
    const tx = await beginTransaction(producer)
    await tx.cancel()
  }
}

/** Retries `action` with backoff while Kafka is unreachable; refused credentials or certificates fail at once. */
async function untilReady(what: string, connection: KafkaConnection, log: Logger, signal: AbortSignal, action: () => Promise<void>): Promise<void> {
  await retryWithBackoff(action, {
    what: `${what}: Kafka unavailable`,
    log,
    signal,
    retriable: (error) => isRetriableKafkaError(error, connection),
    fatal: (error) => kafkaSetupError(error, connection) ?? error,
  })
}
