import type { Logger } from '../../shell/log.ts'
import type { Settings } from '../../shell/settings.ts'
import { retryWithBackoff, StoppedWaiting } from '../../shell/retry.ts'
import { StageComponent } from '../../shell/stage.ts'
import { formatDuration } from '../../shell/duration.ts'
import type { Database } from '../../shell/postgres/database.ts'
import { SinkDatabase } from '../../shell/postgres/sink-database.ts'
import { kafkaConnection } from '../../shell/kafka/connection.ts'
import { createProducer } from '../../shell/kafka/producer.ts'
import type { BatchHandler } from '../../shell/kafka/consumer-loop.ts'
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
  /** the figures of its loop: batches and records committed, and the partitions it was assigned */
  loop: { records: number; batches: number; readonly assignments: { topic: string; partitions: number[] }[] }
  /** settles when the loop ends: resolves after stop(), rejects on a fatal error */
  done: Promise<void>
  ready(): Promise<boolean>
  stop(): Promise<void>
}

/**
 * Rows per batch into embedded PGlite (the loop's default, 5000, for PostgreSQL): fewer records
 * held while PGlite's single thread copies them, so less for V8 to promote. The sink's peak RSS
 * was 375–388 MB instead of 385–438 MB (docs/benchmarks.md, "Memory (peak RSS), December 2026").
 */
export const PGLITE_MAX_BATCH = 2000

/**
 * The metrics sink as a stage: `performance` → PostgreSQL (or PGlite). Its start-up opens the
 * database, creates the table (waiting with backoff while the database is away) and the
 * topics; its handler writes each batch's rows in slices that overlap with their decoding and
 * routes what it cannot decode to `performance-errors`; the runtime commits offsets only after
 * the rows are in. A retention timer deletes old rows while it runs.
 */
export function metricsSinkStage(options: Omit<SinkOptions, 'signal'>): { component: StageComponent; database: () => Database | undefined } {
  const { settings, log } = options
  const connection = kafkaConnection(settings, 'metrics-sink')
  const database = new SinkDatabase(settings, options.db)
  const maxBatchSize = options.maxBatchSize ?? (settings.DATABASE_URL ? undefined : PGLITE_MAX_BATCH)
  let handler: BatchHandler | undefined
  const component = new StageComponent({
    name: 'sink',
    connection,
    groupId: options.groupId,
    inputs: [settings.TOPIC_PERFORMANCE],
    handle: (batch, context) => handler!(batch, context),
    retry: { isRetriable: isDatabaseUnavailable },
    outcomes: { [settings.TOPIC_PERFORMANCE_ERRORS]: 'error' },
    producer: createProducer(connection),
    from: options.from ?? 'earliest',
    ...(maxBatchSize ? { maxBatchSize } : {}),
    log,
    prepare: async (signal) => {
      const db = await database.open()
      await untilSchemaReady(db, log, signal)
      await ensureTopicsPatiently(connection, [settings.TOPIC_PERFORMANCE, settings.TOPIC_PERFORMANCE_ERRORS], log, signal)
      handler = sinkHandler({ db, errorsTopic: settings.TOPIC_PERFORMANCE_ERRORS })
      const retentionMs = settings.METRICS_RETENTION
      const checkMs = database.startRetention({ deleteExpired: deleteExpiredRows, what: 'row(s)', retentionMs, everyMs: options.retentionCheckMs, log })
      log.info(`sink: ${settings.TOPIC_PERFORMANCE} → ${db.description} (group ${options.groupId}); rows older than ${formatDuration(retentionMs)} are deleted every ${formatDuration(checkMs)}`)
    },
    close: () => database.close(),
    ready: () => database.ready(),
  })
  return { component, database: () => database.current }
}

/** The sink stage, started; `stop()` stops it gracefully. StoppedWaiting when the signal stopped its start-up. */
export async function startSink(options: SinkOptions): Promise<RunningSink> {
  const { component, database } = metricsSinkStage(options)
  const stop = new AbortController()
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal
  await component.start(signal)
  const loop = component.loop
  if (!loop) throw new StoppedWaiting('stopped while waiting for the database or Kafka')
  return {
    db: database()!,
    loop,
    done: component.done,
    ready: () => component.ready().catch(() => false),
    async stop() {
      stop.abort()
      await component.done.catch(() => {})
    },
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
