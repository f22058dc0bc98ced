import pg from 'pg'
import { expect, inject, it } from 'vitest'
import { freePort } from '../../src/shell/broker/local-broker.ts'
import { kafkaConnection } from '../../src/shell/kafka/connection.ts'
import { readTopic } from '../../src/shell/kafka/topic-reader.ts'
import { loadSettings } from '../../src/shell/settings.ts'
import { exitOf, spawnKpipe, waitFor } from '../support/cli.ts'
import { uniqueName } from '../support/host-metrics.ts'
import { removePostgres, startPostgres } from '../support/postgres-server.ts'
import { faultSeed, hostSample, reportFigures, seconds, streamRecords } from './fault-support.ts'
import { OffsetWatch } from './offset-watch.ts'

const SAMPLES = 14_000
/** 200 hosts sampled every 500 ms */
const RATE = 400
const OUTAGE_MS = 10_000

/**
 * `kpipe metrics sink` on a PostgreSQL server of this test's own (the shared one serves other
 * tests), under a steady load of samples; the server is stopped for 10 s in the middle and
 * started again. The sink must back off, commit nothing meanwhile, resume by itself, and end
 * with exactly one row per Kafka record.
 */
it('PostgreSQL stopped for 10 s mid-stream: the sink backs off and resumes; every Kafka record is exactly one row', async () => {
  const { seed, random } = faultSeed('postgres-outage')
  const server = startPostgres(await freePort())
  const env = {
    KAFKA_BROKERS: inject('kafkaBrokers'),
    DATABASE_URL: server.url,
    TOPIC_PERFORMANCE: uniqueName('performance'),
    TOPIC_PERFORMANCE_ERRORS: uniqueName('performance-errors'),
    LOG_LEVEL: 'warn',
  }
  const settings = loadSettings(env)
  const group = `faults-sink-${settings.TOPIC_PERFORMANCE}`
  const sink = spawnKpipe(['metrics', 'sink', '--group', group], env)
  const alive = () => {
    if (sink.exitCode !== null || sink.signalCode !== null) throw new Error(`the sink exited (code ${sink.exitCode}, signal ${sink.signalCode}): ${sink.output().slice(-3000)}`)
    return true
  }
  const watch = new OffsetWatch(settings)
  const committed = () => watch.committedSum(group, settings.TOPIC_PERFORMANCE)
  let db: pg.Client | undefined
  const rows = async () => {
    if (!db) {
      const client = new pg.Client({ connectionString: server.url })
      client.on('error', () => {})
      await client.connect()
      db = client
    }
    try {
      return Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM performance')).rows[0]!.n)
    } catch (error) {
      await db.end().catch(() => {})
      db = undefined
      throw error
    }
  }
  let stream: ReturnType<typeof streamRecords> | undefined
  let exit: Awaited<ReturnType<typeof exitOf>> | undefined
  try {
    await waitFor(async () => alive() && (await rows()) >= 0, 120_000, 'the sink to create its table')
    const started = Date.now()
    stream = streamRecords(settings, { count: SAMPLES, rate: RATE, make: (i) => hostSample(settings.TOPIC_PERFORMANCE, 'outage', i) })
    // the outage starts at a random moment once 2,000–4,000 rows are in
    const startAfter = 2000 + Math.floor(random() * 2000)
    await waitFor(async () => alive() && (await rows()) >= startAfter, 120_000, `${startAfter} rows`)
    await db?.end().catch(() => {})
    db = undefined
    const atStop = { committed: await committed(), sent: stream.sent }
    const stoppedAt = Date.now()
    server.stop()
    // the outage lasts 10 s by definition: meanwhile the sink must say it is retrying and commit nothing
    await waitFor(() => alive() && /nothing committed/.test(sink.output()), OUTAGE_MS, 'the sink to report that it backs off')
    const committedBeforeStop = await committed()
    while (Date.now() - stoppedAt < OUTAGE_MS) {
      alive()
      expect(await committed()).toBe(committedBeforeStop)
      await new Promise((r) => setTimeout(r, 250))
    }
    const sentDuringOutage = stream.sent - atStop.sent
    server.start()
    const outageMs = Date.now() - stoppedAt
    const restartedAt = Date.now()
    await waitFor(async () => alive() && (await committed()) > committedBeforeStop, 120_000, 'the sink to commit again')
    const resumedMs = Date.now() - restartedAt
    await stream.done
    const records = await watch.endSum([settings.TOPIC_PERFORMANCE])
    await waitFor(async () => alive() && (await committed()) >= records, 300_000, 'every sample committed')
    const caughtUpMs = Date.now() - restartedAt

    await rows()
    const table = (await db!.query<{ n: string; keys: string; first: string; last: string }>(
      'SELECT count(*) AS n, count(DISTINCT (host, time)) AS keys, min(cpu_interrupts)::text AS first, max(cpu_interrupts)::text AS last FROM performance',
    )).rows[0]!
    let errors = 0
    await readTopic(kafkaConnection(settings, 'fault-reader'), settings.TOPIC_PERFORMANCE_ERRORS, { from: 'earliest' }, () => void errors++)
    const backoffLines = sink.output().split('\n').filter((l) => l.includes('nothing committed')).length
    reportFigures('postgres-outage', {
      seed, records, rows: Number(table.n), outageSeconds: seconds(outageMs), sentDuringOutage, atStop,
      resumedAfterRestartSeconds: seconds(resumedMs), caughtUpAfterRestartSeconds: seconds(caughtUpMs),
      backoffWarnings: backoffLines, streamRetries: stream.retries, totalSeconds: seconds(Date.now() - started), errorRecords: errors,
    })
    // the broker never failed: every sample was written once, and is exactly one row
    expect(stream.retries).toBe(0)
    expect(records).toBe(SAMPLES)
    expect(table).toEqual({ n: String(SAMPLES), keys: String(SAMPLES), first: '0', last: String(SAMPLES - 1) })
    expect(errors).toBe(0)
    expect(sentDuringOutage).toBeGreaterThan(1000)
    expect(alive()).toBe(true)
  } finally {
    stream?.stop()
    sink.kill('SIGTERM')
    exit = await exitOf(sink)
    await db?.end().catch(() => {})
    await watch.close()
    removePostgres(server)
  }
  expect(exit.code, sink.output().slice(-2000)).toBe(0)
})
