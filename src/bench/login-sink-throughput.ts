import { loadSettings } from '../shell/settings.ts'
import { createProducer } from '../shell/kafka/producer.ts'
import type { ConsumedRecord, OutputRecord } from '../shell/kafka/records.ts'
import { openPostgres } from '../shell/postgres/database.ts'
import { LoginGenerator } from '../logins/generate/login-generator.ts'
import { LoginProcessor } from '../logins/process/login-processor.ts'
import type { BenchContext } from './bench-context.ts'
import { pollUntil, startPart } from './measure.ts'
import { expectDatabase } from './sink-throughput.ts'
import { sendChunks } from '../shell/kafka/consumer-loop.ts'

export interface LoginSinkRun {
  eventsPerS: number
  /** the sink's own CPU time per event between the first batch stored and the last: what an event costs it, whatever else runs */
  cpuUsPerEvent: number
  rows: number
  peakRssBytes: number
}

const PRELOAD_SEND = 4000

/**
 * The processor's outputs for `events` generated logins (5 % invalid or stale, a tenth of other
 * app versions), made by the processor's own handler, spread over the three output topics.
 */
async function preloadOutputs(context: BenchContext, topics: { processed: string; cleaned: string; errors: string }, events: number): Promise<void> {
  const settings = loadSettings({ KPIPE_HASH_KEY: 'bench-hash-key-0123456789', TOPIC_PROCESSED: topics.processed, TOPIC_CLEANED: topics.cleaned, TOPIC_ERRORS: topics.errors, MAX_MESSAGE_AGE: '3600' })
  const processor = new LoginProcessor(settings, 'bench')
  const generator = new LoginGenerator(7, 0.05)
  const producer = createProducer(context.connection, { clientId: `${context.connection.clientId}-preload` })
  try {
    for (let sent = 0; sent < events;) {
      const now = Math.floor(Date.now() / 1000)
      const inputs: ConsumedRecord[] = []
      for (const end = Math.min(events, sent + PRELOAD_SEND); sent < end; sent++) {
        const login = generator.next(now)
        const value = typeof login.value === 'string' ? Buffer.from(login.value) : login.value
        inputs.push({ topic: 'user-login', partition: 0, offset: BigInt(sent), key: undefined, value, timestamp: BigInt(Date.now()), headers: new Map() } as unknown as ConsumedRecord)
      }
      const outputs: OutputRecord[] = processor.handle(inputs)
      for (const chunk of sendChunks(outputs)) await producer.send({ messages: chunk })
      context.status(`preloading login outputs: ${sent.toLocaleString('en')} of ${events.toLocaleString('en')}`)
    }
  } finally {
    await producer.close().catch(() => {})
  }
}

/**
 * `kpipe logins sink` as a child on `events` preloaded outputs, into PostgreSQL; timed from the
 * first batch stored to the last, read from the sink's own offsets in kpipe_offsets (written in the
 * same transaction as the counts). SUM(logins) is checked against the events after.
 */
export async function measureLoginSink(context: BenchContext, databaseUrl: string, events: number, name: string, cpuProfileDir?: string): Promise<LoginSinkRun> {
  const prefix = `${context.runId}-${name}`
  // the sink waits for an absent database for ever (it retries): the bench must not
  await expectDatabase(databaseUrl)
  const topics = { processed: `${prefix}-processed-output`, cleaned: `${prefix}-cleaned-data`, errors: `${prefix}-processed-errors` }
  await context.probe.createTopics(Object.values(topics))
  await preloadOutputs(context, topics, events)
  const groupId = `${prefix}-group`
  // a schema of its own (the sink's tables land in it through search_path): a database the bench
  // shares with real data keeps that data, and the checks below see only the bench's rows
  const schema = prefix.replace(/[^A-Za-z0-9]/g, '_').toLowerCase()
  const admin = openPostgres(databaseUrl, 1)
  await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
  const url = new URL(databaseUrl)
  url.searchParams.set('options', `-c search_path=${schema}`)
  const schemaUrl = url.toString()
  const db = openPostgres(schemaUrl, 1)
  const spawnedAt = performance.now()
  const part = startPart(['logins', 'sink', '--group', groupId], context.childEnv({
    TOPIC_PROCESSED: topics.processed,
    TOPIC_CLEANED: topics.cleaned,
    TOPIC_ERRORS: topics.errors,
    DATABASE_URL: schemaUrl,
  }), cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : [])
  try {
    // kpipe_offsets holds next offsets: without transaction markers in these topics, their sum is the events stored
    const stored = async () => {
      const { rows } = await db.query<{ n: string | null }>('SELECT sum(next_offset)::text AS n FROM kpipe_offsets WHERE consumer = $1', [groupId]).catch(() => ({ rows: [{ n: null }] }))
      return Number(rows[0]!.n ?? 0)
    }
    let firstAt = 0
    let firstStored = 0
    let firstCpuMs = 0
    let done = 0
    await pollUntil(async () => {
      if (part.exited()) throw new Error(`the logins sink exited early:\n${part.output()}`)
      done = await stored()
      if (done > 0 && firstAt === 0) {
        firstAt = performance.now()
        firstStored = done
        firstCpuMs = part.cpuMs()
      }
      context.status(`logins sink into PostgreSQL: ${done.toLocaleString('en')} of ${events.toLocaleString('en')} events stored`)
      return done >= events
    }, 600_000, `the logins sink to store ${events} events (${done} so far)`, 25)
    const doneAt = performance.now()
    const doneCpuMs = part.cpuMs()
    const peakRssBytes = part.peakRss()
    const { rows: [sum] } = await db.query<{ logins: string | null; rows: string }>('SELECT sum(logins)::text AS logins, count(*)::text AS rows FROM login_activity')
    if (Number(sum?.logins) !== events) throw new Error(`the logins sink stored offsets of ${events} events but login_activity counts ${sum?.logins} logins`)
    const seconds = (doneAt - firstAt) / 1000
    const steady = done - firstStored > 0 && seconds > 0 ? (done - firstStored) / seconds : (events * 1000) / (doneAt - spawnedAt)
    // one batch took everything (--quick): the whole process's CPU time, start-up included
    const cpuUsPerEvent = done - firstStored > 0 ? ((doneCpuMs - firstCpuMs) * 1000) / (done - firstStored) : (doneCpuMs * 1000) / events
    return { eventsPerS: steady, cpuUsPerEvent, rows: Number(sum?.rows), peakRssBytes }
  } finally {
    await part.stop()
    await context.probe.deleteTopics(Object.values(topics)).catch(() => {})
    await db.close()
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {})
    await admin.close()
  }
}
