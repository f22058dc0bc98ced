import type { Logger } from '../../shell/log.ts'
import type { Settings } from '../../shell/settings.ts'
import { backoffDelay, sleep } from '../../shell/backoff.ts'
import { formatDuration } from '../../shell/duration.ts'
import { openDatabase, type Database } from '../../shell/postgres/database.ts'
import { kafkaConnection } from '../../shell/kafka/connection.ts'
import { ConsumerLoop, describe } from '../../shell/kafka/consumer-loop.ts'
import { recordsIn } from '../../shell/observability/prometheus.ts'
import { ensureTopicsPatiently, StoppedWaiting } from '../../host-metrics/kafka-topics.ts'
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

export interface RunningLoginSink {
  db: Database
  loop: ConsumerLoop
  /** records counted into login_activity, and records skipped as already counted */
  readonly counted: number
  readonly skipped: number
  /** settles when the loop ends: resolves after stop(), rejects on a fatal error */
  done: Promise<void>
  ready(): Promise<boolean>
  stop(): Promise<void>
}

/**
 * `kpipe logins sink`: the processor's three outputs → login_activity, exactly once. The
 * consumer loop only fetches; the ActivityWriter decides what counts, from the offsets stored
 * in PostgreSQL with the counts. The loop starts from Kafka's committed offsets, which are
 * committed after the database and so never ahead of the stored ones: what it delivers again
 * is skipped. Reads are read_committed (the loop's default).
 */
export async function startLoginSink(options: LoginSinkOptions): Promise<RunningLoginSink> {
  const { settings: s, log } = options
  const ownDatabase = !options.db
  const db = options.db ?? (await openDatabase(s))
  const stopping = new AbortController()
  const startup = options.signal ? AbortSignal.any([options.signal, stopping.signal]) : stopping.signal
  try {
    await untilSchemaReady(db, log, startup)
    const topics: Record<string, OutputTopic> = { [s.TOPIC_PROCESSED]: 'processed', [s.TOPIC_CLEANED]: 'cleaned', [s.TOPIC_ERRORS]: 'errors' }
    const connection = kafkaConnection(s, 'logins-sink')
    await ensureTopicsPatiently(connection, Object.keys(topics), log, startup)
    const writer = new ActivityWriter(db, options.groupId, (topic) => topics[topic])
    let counted = 0
    let skipped = 0
    const loop = new ConsumerLoop({
      connection,
      groupId: options.groupId,
      topics: Object.keys(topics),
      handler: async (batch) => {
        const result = await writer.write(batch)
        counted += result.counted
        skipped += result.skipped
        let first = 0
        for (let i = 1; i <= batch.length; i++) {
          if (i < batch.length && batch[i]!.topic === batch[first]!.topic) continue
          recordsIn.inc({ part: 'logins-sink', topic: batch[first]!.topic }, i - first)
          first = i
        }
        return []
      },
      isRetriable: isDatabaseUnavailable,
      log,
      from: 'earliest',
      readCommitted: true,
      ...(options.maxBatchSize ? { maxBatchSize: options.maxBatchSize } : {}),
    })
    const retentionMs = s.LOGIN_ACTIVITY_RETENTION
    const checkMs = options.retentionCheckMs ?? Math.min(600_000, Math.max(60_000, Math.floor(retentionMs / 10)))
    const retention = runRetention(db, retentionMs, checkMs, log, stopping.signal)
    log.info(`logins sink: ${Object.keys(topics).join(', ')} → login_activity in ${db.description} (group ${options.groupId}); minutes older than ${formatDuration(retentionMs)} are deleted every ${formatDuration(checkMs)}`)
    const done = loop.run()
    let closed: Promise<void> | undefined
    const close = () =>
      (closed ??= (async () => {
        stopping.abort()
        loop.stop()
        await done.catch(() => {})
        await retention
        if (ownDatabase) await db.close().catch(() => {})
      })())
    done.catch(() => void close())
    return {
      db,
      loop,
      get counted() {
        return counted
      },
      get skipped() {
        return skipped
      },
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

async function untilSchemaReady(db: Database, log: Logger, signal: AbortSignal): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await ensureLoginActivityTables(db)
      return
    } catch (error) {
      if (signal.aborted) throw new StoppedWaiting('stopped while waiting for the database')
      if (!isDatabaseUnavailable(error)) throw error
      const delay = backoffDelay(attempt)
      log.warn({ err: error, attempt }, `database ${db.description} unavailable (${describe(error)}); retrying in ${(delay / 1000).toFixed(1)} s`)
      await sleep(delay, signal)
    }
  }
}

async function runRetention(db: Database, retentionMs: number, everyMs: number, log: Logger, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const deleted = await deleteExpiredActivity(db, retentionMs)
      if (deleted > 0) log.info(`retention: ${deleted} login_activity row(s) older than ${formatDuration(retentionMs)} deleted`)
    } catch (error) {
      log.warn({ err: error }, `retention delete failed (${describe(error)}); trying again in ${formatDuration(everyMs)}`)
    }
    await sleep(everyMs, signal)
  }
}
