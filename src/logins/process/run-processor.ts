import type { Server } from 'node:http'
import { hostname } from 'node:os'
import type { Settings } from '../../shell/settings.ts'
import type { Logger } from '../../shell/log.ts'
import { UserError } from '../../shell/errors.ts'
import { sleep } from '../../shell/backoff.ts'
import { retryWithBackoff, StoppedWaiting } from '../../shell/retry.ts'
import { kafkaConnection, type KafkaConnection } from '../../shell/kafka/connection.ts'
import { describe, isRetriableKafkaError, kafkaSetupError } from '../../shell/kafka/connection-errors.ts'
import { createProducer, type KpipeProducer } from '../../shell/kafka/producer.ts'
import { ConsumerLoop } from '../../shell/kafka/consumer-loop.ts'
import { ensureTopics } from '../../shell/kafka/topics.ts'
import type { OutputRecord } from '../../shell/kafka/records.ts'
import { consumerLag, serveMetrics } from '../../shell/observability/prometheus.ts'
import { LoginProcessor, type PartitionLag } from './login-processor.ts'

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
  /** default 5000 */
  maxBatchSize?: number
}

const METRICS_INTERVAL_MS = 1000
/** what a graceful stop may spend flushing the last summary and metrics, inside SPEC's 10 s */
const FLUSH_TIMEOUT_MS = 3000

export function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}`
}

/** The message a user sees when the hash key is missing: what, why, and what to do. */
export const MISSING_HASH_KEY = 'KPIPE_HASH_KEY is not set: the processor pseudonymises device ids with an HMAC under this secret key. ' +
  'Set it to a secret of at least 16 characters (e.g. export KPIPE_HASH_KEY=$(openssl rand -hex 32)) and keep it: another key gives other pseudonyms.'

/**
 * `kpipe logins process`: the login processor as a handler of the consumer loop, its own summary
 * and metrics timers, and a graceful stop (stop fetching, finish and commit the batch in
 * flight, publish the final summary, close). Resolves when stopped; rejects on a fatal error.
 */
export async function runProcessor(options: ProcessorRunOptions): Promise<LoginProcessor> {
  const { settings, log, signal } = options
  if (!settings.KPIPE_HASH_KEY) throw new UserError(MISSING_HASH_KEY)
  const instanceId = options.instanceId ?? defaultInstanceId()
  const connection = kafkaConnection(settings, 'logins')
  const processor = new LoginProcessor(settings, instanceId)

  const producer = createProducer(connection, options.exactlyOnce ? { transactionalId: `kpipe-logins-${options.groupId}-${instanceId}` } : {})
  // Summary and interval metrics are not caused by one input: they go through a producer of
  // their own, outside the loop's writes and transactions (and never concurrently with them:
  // concurrent sends of one idempotent producer fail with OUT_OF_ORDER_SEQUENCE_NUMBER).
  const sideProducer = createProducer(connection, { clientId: `${connection.clientId}-side` })
  try {
    await untilReady('create topics', connection, log, signal, () => ensureLoginTopics(connection, settings))
    if (options.exactlyOnce) await untilReady('initialise transactions', connection, log, signal, () => fenceEarlierTransactions(producer))
  } catch (error) {
    await Promise.race([Promise.allSettled([producer.close(), sideProducer.close()]), sleep(FLUSH_TIMEOUT_MS)])
    // a stop asked for while Kafka was still away is a clean stop: nothing was read, nothing is owed
    if (error instanceof StoppedWaiting) {
      log.info('stopped while waiting for Kafka; nothing was processed')
      return processor
    }
    throw error
  }

  const loop = new ConsumerLoop({
    connection,
    groupId: options.groupId,
    topics: [settings.TOPIC_LOGINS],
    handler: processor.handle,
    onCommitted: (batch, outputs) => {
      processor.committed(batch, outputs)
      if (processor.summaryDue()) publish(processor.takeSummary())
    },
    log,
    producer,
    delivery: options.exactlyOnce ? 'exactly-once' : 'at-least-once',
    from: options.from,
    ...(options.maxBatchSize ? { maxBatchSize: options.maxBatchSize } : {}),
  })

  // one send at a time, in order
  let publishing: Promise<unknown> = Promise.resolve()
  let publishFailures = 0
  function publish(record: OutputRecord): void {
    publishing = publishing.then(() => sideProducer.send({ messages: [record] })).then(
      () => {
        publishFailures = 0
      },
      (error: unknown) => {
        // Observations, not data: one lost summary is superseded by the next, which carries totals.
        if (publishFailures++ === 0) log.warn({ err: error }, `could not publish to ${record.topic} (${describe(error)})`)
      },
    )
  }

  let lagQuery: Promise<void> | undefined
  let lastLag: PartitionLag[] = []
  const timer = setInterval(() => {
    if (settings.METRICS_MODE === 'interval') publish(processor.takeMetrics(lastLag))
    if (processor.summaryDue()) publish(processor.takeSummary())
    lagQuery ??= partitionLag(loop, processor, settings.TOPIC_LOGINS)
      .then((lag) => {
        lastLag = lag
        for (const l of lag) consumerLag.set({ part: 'logins', topic: l.topic, partition: String(l.partition) }, l.lag)
      }, (error: unknown) => log.debug({ err: error }, 'consumer lag not available'))
      .finally(() => {
        lagQuery = undefined
      })
  }, METRICS_INTERVAL_MS)
  timer.unref()

  let server: Server | undefined
  if (options.metricsPort !== undefined) {
    server = await serveMetrics(options.metricsPort, settings.HOST, () => loop.consumer !== undefined)
    log.info(`metrics on http://${settings.HOST}:${(server.address() as { port: number }).port}/metrics`)
  }

  const onAbort = () => loop.stop()
  signal.addEventListener('abort', onAbort, { once: true })
  if (signal.aborted) loop.stop()
  log.info({ group: options.groupId, instance: instanceId, delivery: options.exactlyOnce ? 'exactly-once' : 'at-least-once' },
    `processing ${settings.TOPIC_LOGINS} → ${settings.TOPIC_PROCESSED}, ${settings.TOPIC_CLEANED}, ${settings.TOPIC_ERRORS}`)
  try {
    await loop.run()
  } finally {
    signal.removeEventListener('abort', onAbort)
    clearInterval(timer)
    if (settings.METRICS_MODE === 'interval') publish(processor.takeMetrics(lastLag))
    publish(processor.takeSummary())
    await Promise.race([publishing, sleep(FLUSH_TIMEOUT_MS)])
    // bounded: a producer waiting on a broker that is gone must not hold up the exit (everything handled is committed)
    await Promise.race([Promise.allSettled([producer.close(), sideProducer.close()]), sleep(FLUSH_TIMEOUT_MS)])
    if (server) await new Promise((resolve) => server.close(resolve))
  }
  const t = processor.total
  log.info(`stopped: ${t.received} received, ${t.processed} processed, ${t.filteredTotal} filtered, ${t.errorsTotal} errors`)
  return processor
}

/** The six topics of the login pipeline, created when missing (the broker's default partitions and replication). */
async function ensureLoginTopics(connection: KafkaConnection, s: Settings): Promise<void> {
  const names = [s.TOPIC_LOGINS, s.TOPIC_PROCESSED, s.TOPIC_ERRORS, s.TOPIC_CLEANED, s.TOPIC_SUMMARY, s.TOPIC_METRICS]
  await ensureTopics(connection, names.map((name) => ({ name, partitions: -1, replicationFactor: -1 })))
}

/**
 * Initialising the transactional id completes or aborts whatever an earlier process with the
 * same id left open (e.g. killed mid-transaction), before the consumer reads committed offsets:
 * otherwise it could read offsets from before that transaction's commit and process it again.
 */
async function fenceEarlierTransactions(producer: KpipeProducer): Promise<void> {
  const tx = await producer.beginTransaction()
  await tx.cancel()
}

/** Retries `action` with backoff while Kafka is unreachable; refused credentials or certificates fail at once. */
async function untilReady(what: string, connection: KafkaConnection, log: Logger, signal: AbortSignal, action: () => Promise<void>): Promise<void> {
  await retryWithBackoff(action, {
    what: `${what}: Kafka unavailable`,
    log,
    signal,
    retriable: isRetriableKafkaError,
    fatal: (error) => kafkaSetupError(error, connection) ?? error,
  })
}

/** End offset minus the next offset to process, per assigned partition. */
async function partitionLag(loop: ConsumerLoop, processor: LoginProcessor, topic: string): Promise<PartitionLag[]> {
  const consumer = loop.consumer
  const assigned = loop.assignments.find((a) => a.topic === topic)?.partitions ?? []
  if (!consumer || assigned.length === 0) return []
  const ends = (await consumer.listOffsets({ topics: [topic] })).get(topic) ?? []
  let committed: bigint[] | undefined
  const lag: PartitionLag[] = []
  for (const partition of assigned) {
    let next = processor.positions.get(`${topic}\0${partition}`)?.next
    if (next === undefined) {
      committed ??= (await consumer.listCommittedOffsets({ topics: [{ topic, partitions: assigned }] })).get(topic) ?? []
      const c = committed[partition]
      next = c !== undefined && c >= 0n ? c : 0n
    }
    const end = ends[partition]
    if (end !== undefined) lag.push({ topic, partition, lag: Math.max(0, Number(end - next)) })
  }
  return lag
}
