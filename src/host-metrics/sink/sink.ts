import type { Logger } from '../../shell/log.ts'
import type { Settings } from '../../shell/settings.ts'
import { sleep } from '../../shell/backoff.ts'
import { retryWithBackoff } from '../../shell/retry.ts'
import { formatDuration } from '../../shell/duration.ts'
import { openDatabase, type Database } from '../../shell/postgres/database.ts'
import { kafkaConnection } from '../../shell/kafka/connection.ts'
import { createProducer } from '../../shell/kafka/producer.ts'
import { ConsumerLoop } from '../../shell/kafka/consumer-loop.ts'
import { describe } from '../../shell/kafka/connection-errors.ts'
import { ensureTopicsPatiently } from '../kafka-topics.ts'
import { deleteExpiredRows, ensurePerformanceTable } from './performance-table.ts'
import { isDatabaseUnavailable, sinkHandler } from './sink-handler.ts'

export interface SinkOptions {
  settings: Settings
  log: Logger
  groupId: string
  from?: 'earliest' | 'latest'
  maxBatchSize?: number
  /** a database already open (e.g. one embedded PGlite shared with the dashboard); the sink then leaves closing it to its owner */
  db?: Database
  /** aborts the start-up waits (for the database, for Kafka) */
  signal?: AbortSignal
  /** how often the retention delete runs (default: a tenth of the retention, 1 min to 10 min) */
  retentionCheckMs?: number
}

export interface RunningSink {
  db: Database
  loop: ConsumerLoop
  /** settles when the loop ends: resolves after stop(), rejects on a fatal error */
  done: Promise<void>
  ready(): Promise<boolean>
  stop(): Promise<void>
}

/**
 * `performance` → PostgreSQL (or PGlite): opens the database, creates the table (waiting
 * with backoff while the database is away), and runs the consumer loop with the sink handler
 * and the retention timer. Offsets are committed by the loop only after the rows are in.
 */
export async function startSink(options: SinkOptions): Promise<RunningSink> {
  const { settings, log } = options
  const ownDatabase = !options.db
  const db = options.db ?? (await openDatabase(settings))
  const stopping = new AbortController()
  const startup = options.signal ? AbortSignal.any([options.signal, stopping.signal]) : stopping.signal
  try {
    await untilSchemaReady(db, log, startup)
    const connection = kafkaConnection(settings, 'metrics-sink')
    await ensureTopicsPatiently(connection, [settings.TOPIC_PERFORMANCE, settings.TOPIC_PERFORMANCE_ERRORS], log, startup)
    const producer = createProducer(connection)
    const loop = new ConsumerLoop({
      connection,
      groupId: options.groupId,
      topics: [settings.TOPIC_PERFORMANCE],
      handler: sinkHandler({ db, errorsTopic: settings.TOPIC_PERFORMANCE_ERRORS }),
      isRetriable: isDatabaseUnavailable,
      producer,
      log,
      from: options.from ?? 'earliest',
      ...(options.maxBatchSize ? { maxBatchSize: options.maxBatchSize } : {}),
    })
    const retentionMs = settings.METRICS_RETENTION
    const checkMs = options.retentionCheckMs ?? Math.min(600_000, Math.max(60_000, Math.floor(retentionMs / 10)))
    const retention = runRetention(db, retentionMs, checkMs, log, stopping.signal)
    log.info(`sink: ${settings.TOPIC_PERFORMANCE} → ${db.description} (group ${options.groupId}); rows older than ${formatDuration(retentionMs)} are deleted every ${formatDuration(checkMs)}`)
    const done = loop.run()
    let closed: Promise<void> | undefined
    const close = () =>
      (closed ??= (async () => {
        stopping.abort()
        loop.stop()
        await done.catch(() => {})
        await retention
        await producer.close().catch(() => {})
        if (ownDatabase) await db.close().catch(() => {})
      })())
    done.catch(() => void close())
    return {
      db,
      loop,
      done,
      async ready() {
        if (loop.stopping) return false
        await db.query('SELECT 1')
        return true
      },
      stop: close,
    }
  } catch (error) {
    stopping.abort()
    if (ownDatabase) await db.close().catch(() => {})
    throw error
  }
}

/** Creates the table, waiting with backoff while the database is away; StoppedWaiting when the signal stops the wait. */
async function untilSchemaReady(db: Database, log: Logger, signal: AbortSignal): Promise<void> {
  await retryWithBackoff(() => ensurePerformanceTable(db), {
    what: `database ${db.description} unavailable`,
    log,
    signal,
    retriable: isDatabaseUnavailable,
  })
}

async function runRetention(db: Database, retentionMs: number, everyMs: number, log: Logger, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const deleted = await deleteExpiredRows(db, retentionMs)
      if (deleted > 0) log.info(`retention: ${deleted} row(s) older than ${formatDuration(retentionMs)} deleted`)
    } catch (error) {
      log.warn({ err: error }, `retention delete failed (${describe(error)}); trying again in ${formatDuration(everyMs)}`)
    }
    await sleep(everyMs, signal)
  }
}
