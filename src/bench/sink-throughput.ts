import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createProducer } from '../shell/kafka/producer.ts'
import type { OutputRecord } from '../shell/kafka/records.ts'
import { openPostgres } from '../shell/postgres/database.ts'
import { errorLine } from '../shell/log.ts'
import { awaitGroup, cpuPerRecordUs, steadyRate, type BenchContext } from './bench-context.ts'
import { startPart } from './measure.ts'
import { sendChunks } from '../shell/kafka/consumer-loop.ts'

export interface SinkRun {
  rowsPerS: number
  /** the sink process's CPU time (all threads) per row, over the same span as the rate */
  cpuUsPerRow: number
  peakRssBytes: number
}

const HOSTS = 16
/**
 * Samples made per send; sendChunks then cuts them into what the broker takes: keyed by 16 hosts
 * over 3 partitions, 4,000 samples can put more than a partition batch's 1 MiB on one partition,
 * which the broker refuses (MESSAGE_TOO_LARGE; it stopped two of this bench's runs).
 */
const PRELOAD_SEND = 4000

/** `rows` distinct samples (16 hosts, one per millisecond each) as the collector writes them. */
async function preloadSamples(context: BenchContext, topic: string, hostPrefix: string, rows: number): Promise<void> {
  const producer = createProducer(context.connection, { clientId: `${context.connection.clientId}-preload` })
  const start = Date.UTC(2026, 0, 1)
  try {
    for (let i = 0; i < rows;) {
      const messages: OutputRecord[] = []
      for (const end = Math.min(rows, i + PRELOAD_SEND); i < end; i++) {
        const host = `${hostPrefix}-${i % HOSTS}`
        const sample = {
          host, time: new Date(start + Math.floor(i / HOSTS)).toISOString(),
          cpu_usage: (i % 10_000) / 100, memory_usage: 43.1, cpu_interrupts: 123_456_789 + i, cpu_calls: null,
          memory_used: 7_340_032_000, memory_free: 1_048_576_000, bytes_sent: 123_456 + i, bytes_received: 654_321 + i, disk_usage: 57.3,
          context_switches: 987_654 + i, soft_interrupts: 55_555 + i,
        }
        messages.push({ topic, key: host, value: JSON.stringify(sample) })
      }
      for (const chunk of sendChunks(messages)) await producer.send({ messages: chunk })
      context.status(`preloading samples: ${i.toLocaleString('en')} of ${rows.toLocaleString('en')}`)
    }
  } finally {
    await producer.close().catch(() => {})
  }
}

/**
 * `kpipe metrics sink` as a child on `rows` preloaded samples, into PostgreSQL (`databaseUrl`) or,
 * without one, into PGlite in a temp dir; timed from its first commit to its last (the loop
 * commits offsets only after the database commit), or from its spawn when one batch took all.
 * For PostgreSQL, the rows are counted after. `cpuProfileDir`: the sink writes a CPU profile there.
 */
export async function measureSink(context: BenchContext, databaseUrl: string | undefined, rows: number, name: string, cpuProfileDir?: string): Promise<SinkRun> {
  // the sink waits for an absent database for ever (it retries): the bench must not
  if (databaseUrl) await expectDatabase(databaseUrl)
  const prefix = `${context.runId}-${name}`
  const topic = `${prefix}-performance`
  const errors = `${prefix}-performance-errors`
  await context.probe.createTopics([topic, errors])
  await preloadSamples(context, topic, prefix, rows)
  const groupId = `${prefix}-group`
  const dataDir = databaseUrl ? undefined : mkdtempSync(join(tmpdir(), 'kpipe-bench-pglite-'))
  const spawnedAt = performance.now()
  const part = startPart(['metrics', 'sink', '--group', groupId], context.childEnv({
    TOPIC_PERFORMANCE: topic,
    TOPIC_PERFORMANCE_ERRORS: errors,
    DATABASE_URL: databaseUrl,
    ...(dataDir ? { KPIPE_DATA_DIR: dataDir } : {}),
  }), cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : [])
  try {
    const progress = await awaitGroup(context, part, groupId, topic, rows, 600_000, `sink into ${databaseUrl ? 'PostgreSQL' : 'PGlite'}`)
    const peakRssBytes = part.peakRss()
    if (databaseUrl) await expectRows(databaseUrl, prefix, rows)
    const errorsWritten = await context.probe.endOffset(errors)
    if (errorsWritten > 0) throw new Error(`the sink routed ${errorsWritten} of the bench's samples to ${errors}`)
    const steady = steadyRate(progress, rows)
    // the first commit took most of the input (--quick): the rate from the spawn, the whole process's CPU time
    if (Number.isNaN(steady)) return { rowsPerS: (rows * 1000) / (progress.doneAt - spawnedAt), cpuUsPerRow: (progress.doneCpuMs * 1000) / rows, peakRssBytes }
    return { rowsPerS: steady, cpuUsPerRow: cpuPerRecordUs(progress, rows), peakRssBytes }
  } finally {
    await part.stop()
    await context.probe.deleteTopics([topic, errors]).catch(() => {})
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
    if (databaseUrl) {
      const db = openPostgres(databaseUrl, 1)
      await db.query('DELETE FROM performance WHERE host LIKE $1', [`${prefix}-%`]).catch(() => {})
      await db.close()
    }
  }
}

/** Fails, saying so, when PostgreSQL at `databaseUrl` does not answer. */
export async function expectDatabase(databaseUrl: string): Promise<void> {
  const db = openPostgres(databaseUrl, 1)
  try {
    await db.query('SELECT 1')
  } catch (error) {
    throw new Error(`PostgreSQL at ${db.description} (DATABASE_URL) cannot be reached: ${errorLine(error)}`, { cause: error })
  } finally {
    await db.close().catch(() => {})
  }
}

async function expectRows(databaseUrl: string, prefix: string, rows: number): Promise<void> {
  const db = openPostgres(databaseUrl, 1)
  try {
    const { rows: [row] } = await db.query<{ n: string }>('SELECT count(*) AS n FROM performance WHERE host LIKE $1', [`${prefix}-%`])
    if (Number(row?.n) !== rows) throw new Error(`the sink committed ${rows} samples but PostgreSQL holds ${row?.n} of them`)
  } finally {
    await db.close()
  }
}
