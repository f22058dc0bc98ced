import type { Logger } from '../../shell/log.ts'
import type { Settings } from '../../shell/settings.ts'
import { retryWithBackoff, StoppedWaiting } from '../../shell/retry.ts'
import { StageComponent } from '../../shell/stage.ts'
import { formatDuration } from '../../shell/duration.ts'
import type { Database } from '../../shell/postgres/database.ts'
import { SinkDatabase } from '../../shell/postgres/sink-database.ts'
import { kafkaConnection } from '../../shell/kafka/connection.ts'
import { ensureTopicsPatiently } from '../../host-metrics/kafka-topics.ts'
import { isDatabaseUnavailable } from '../../host-metrics/sink/sink-handler.ts'
import { deleteExpiredActivity, ensureLoginActivityTables } from './activity-table.ts'
import { ActivityWriter } from './activity-writer.ts'
import type { OutputTopic } from './login-activity.ts'

export interface LoginSinkOptions {
  settings: Settings
  log: Logger
  /** the consumer group, and the name of this sink's offsets in kpipe_offsets */
  groupId: string
  maxBatchSize?: number
  /** a database already open (one embedded PGlite shared under `kpipe up`); closing it is then left to its owner */
  db?: Database
  /** aborts the start-up waits (for the database, for Kafka) */
  signal?: AbortSignal
  /** how often the retention delete runs (default: a tenth of the retention, 1 min to 10 min) */
  retentionCheckMs?: number
}

export interface LoginSinkCounts {
  /** records counted into login_activity, and records skipped as counted before */
  counted: number
  skipped: number
}

/**
 * `kpipe logins sink` as a stage: the processor's three outputs → login_activity, exactly once.
 * The ActivityWriter keeps the offsets in PostgreSQL, in each batch's transaction; the runtime
 * seeks every assigned partition to them (`startingOffsets`) and hands over the batches. Kafka's
 * committed offsets are still committed after each batch, for the lag shown to operators only:
 * the writer counts nothing below the stored offsets, wherever the consumer starts. Reads are
 * read_committed (the runtime's default).
 */
export function loginSinkStage(options: Omit<LoginSinkOptions, 'signal'>): { component: StageComponent; database: () => Database | undefined; counts: LoginSinkCounts } {
  const { settings: s, log } = options
  const connection = kafkaConnection(s, 'logins-sink')
  const topics: Record<string, OutputTopic> = { [s.TOPIC_PROCESSED]: 'processed', [s.TOPIC_CLEANED]: 'cleaned', [s.TOPIC_ERRORS]: 'errors' }
  const sinkDatabase = new SinkDatabase(s, options.db)
  let writer: ActivityWriter | undefined
  const counts: LoginSinkCounts = { counted: 0, skipped: 0 }
  const component = new StageComponent({
    name: 'logins-sink',
    connection,
    groupId: options.groupId,
    inputs: Object.keys(topics),
    handle: async (batch) => {
      const result = await writer!.write(batch)
      counts.counted += result.counted
      counts.skipped += result.skipped
      return []
    },
    startingOffsets: (partitions) => writer!.storedOffsets(partitions),
    retry: { isRetriable: isDatabaseUnavailable },
    from: 'earliest',
    readCommitted: true,
    ...(options.maxBatchSize ? { maxBatchSize: options.maxBatchSize } : {}),
    log,
    prepare: async (signal) => {
      const database = await sinkDatabase.open()
      await retryWithBackoff(() => ensureLoginActivityTables(database), { what: `database ${database.description} unavailable`, log, signal, retriable: isDatabaseUnavailable })
      await ensureTopicsPatiently(connection, Object.keys(topics), log, signal)
      writer = new ActivityWriter(database, options.groupId, (topic) => topics[topic])
      const retentionMs = s.LOGIN_ACTIVITY_RETENTION
      const checkMs = sinkDatabase.startRetention({ deleteExpired: deleteExpiredActivity, what: 'login_activity row(s)', retentionMs, everyMs: options.retentionCheckMs, log })
      log.info(`logins sink: ${Object.keys(topics).join(', ')} → login_activity in ${database.description} (group ${options.groupId}); minutes older than ${formatDuration(retentionMs)} are deleted every ${formatDuration(checkMs)}`)
    },
    close: () => sinkDatabase.close(),
    ready: () => sinkDatabase.ready(),
  })
  return { component, database: () => sinkDatabase.current, counts }
}

export interface RunningLoginSink extends LoginSinkCounts {
  db: Database
  /** settles when the stage ends: resolves after stop(), rejects on a fatal error */
  done: Promise<void>
  ready(): Promise<boolean>
  stop(): Promise<void>
}

/** The logins sink, started; `stop()` stops it gracefully. StoppedWaiting when the signal stopped its start-up. */
export async function startLoginSink(options: LoginSinkOptions): Promise<RunningLoginSink> {
  const { component, database, counts } = loginSinkStage(options)
  const stop = new AbortController()
  await component.start(options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal)
  if (!component.loop) throw new StoppedWaiting('stopped while waiting for the database or Kafka')
  return {
    db: database()!,
    get counted() {
      return counts.counted
    },
    get skipped() {
      return counts.skipped
    },
    done: component.done,
    ready: () => component.ready().catch(() => false),
    async stop() {
      stop.abort()
      await component.done.catch(() => {})
    },
  }
}
