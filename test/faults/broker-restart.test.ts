import pg from 'pg'
import { expect, inject, it } from 'vitest'
import { loginEnv, settingsOf } from '../../src/logins/logins.fixture.ts'
import { readTopic } from '../../src/shell/kafka/topic-reader.ts'
import { kafkaConnection } from '../../src/shell/kafka/connection.ts'
import { exitOf, spawnKpipe, waitFor } from '../support/cli.ts'
import { createTestDatabase, uniqueName } from '../support/host-metrics.ts'
import { auditWithCli, faultSeed, hostSample, ownBroker, reportFigures, seconds, streamLogins, streamRecords } from './fault-support.ts'
import { OffsetWatch } from './offset-watch.ts'

const LOGINS = 40_000
const LOGIN_RATE = 1000
const SAMPLES = 16_000
const SAMPLE_RATE = 400

/**
 * A broker of this test's own, stopped (cleanly, as an operator would) while `kpipe logins
 * process` and `kpipe metrics sink` work through a steady stream, and started again on the same
 * data: both must carry on by themselves, and nothing may be missing at the end.
 */
it('the broker stopped and started again mid-stream: processor and sink carry on without restarts, 0 missing', async () => {
  const { seed } = faultSeed('broker-restart')
  const broker = await ownBroker()
  const database = await createTestDatabase(inject('postgresUrl'))
  const env = loginEnv({ KAFKA_BROKERS: broker.bootstrap, DATABASE_URL: database.url, TOPIC_PERFORMANCE: uniqueName('performance'), TOPIC_PERFORMANCE_ERRORS: uniqueName('performance-errors'), LOG_LEVEL: 'warn' })
  const settings = settingsOf(env)
  const group = `faults-${settings.TOPIC_LOGINS}`
  const sinkGroup = `faults-sink-${settings.TOPIC_PERFORMANCE}`
  const db = new pg.Client({ connectionString: database.url })
  await db.connect()
  const rows = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM performance')).rows[0]!.n)
  const processor = spawnKpipe(['logins', 'process', '--group', group], env)
  const sink = spawnKpipe(['metrics', 'sink', '--group', sinkGroup], env)
  const watch = new OffsetWatch(settings)
  let exits: Awaited<ReturnType<typeof exitOf>>[] | undefined
  let logins: ReturnType<typeof streamLogins> | undefined
  let samples: ReturnType<typeof streamRecords> | undefined
  const alive = () => {
    for (const [name, child] of [['processor', processor], ['sink', sink]] as const) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the ${name} exited (code ${child.exitCode}, signal ${child.signalCode}): ${child.output().slice(-3000)}`)
    }
    return true
  }
  try {
    // the sink creates the table; both wait for their topics
    await waitFor(async () => alive() && (await db.query(`SELECT to_regclass('performance') AS t`)).rows[0]!.t !== null, 120_000, 'the sink to create its table')
    const started = Date.now()
    logins = streamLogins(settings, { count: LOGINS, rate: LOGIN_RATE, seed })
    samples = streamRecords(settings, { count: SAMPLES, rate: SAMPLE_RATE, make: (i) => hostSample(settings.TOPIC_PERFORMANCE, 'restart', i) })
    await waitFor(async () => alive() && (await watch.committedSum(group)) >= 5000 && (await rows()) >= 2000, 120_000, 'both to be working through the stream')
    const before = { committed: await watch.committedSum(group), rows: await rows(), loginsSent: logins.sent, samplesSent: samples.sent }
    await watch.close()

    const stopAt = Date.now()
    await broker.stop()
    const stoppedMs = Date.now() - stopAt
    await broker.restart()
    const outageMs = Date.now() - stopAt
    const restartedAt = Date.now()
    const after = new OffsetWatch(settings)
    try {
      await waitFor(async () => alive() && (await after.committedSum(group)) > before.committed, 180_000, 'the processor to commit again after the restart')
      const processorBackMs = Date.now() - restartedAt
      await waitFor(async () => alive() && (await rows()) > before.rows + 100, 180_000, 'the sink to write again after the restart')
      const sinkBackMs = Date.now() - restartedAt
      await Promise.all([logins.done, samples.done])
      const inputs = await after.endSum([settings.TOPIC_LOGINS])
      await waitFor(async () => alive() && (await after.committedSum(group)) >= inputs, 300_000, 'every login committed')
      const records = await after.endSum([settings.TOPIC_PERFORMANCE])
      await waitFor(async () => alive() && (await after.committedSum(sinkGroup, settings.TOPIC_PERFORMANCE)) >= records, 300_000, 'every sample committed by the sink')

      // every distinct sample in Kafka is exactly one row, and no row comes from elsewhere
      const inKafka = new Set<string>()
      let kafkaRecords = 0
      await readTopic(kafkaConnection(settings, 'fault-reader'), settings.TOPIC_PERFORMANCE, { from: 'earliest' }, (r) => {
        kafkaRecords++
        const s = JSON.parse(r.value!.toString('utf8')) as { host: string; time: string }
        inKafka.add(`${s.host} ${new Date(s.time).toISOString()}`)
      })
      const table = (await db.query<{ n: string; distinct_keys: string }>(`SELECT count(*) AS n, count(DISTINCT (host, time)) AS distinct_keys FROM performance`)).rows[0]!
      const keys = (await db.query<{ host: string; time: Date }>('SELECT host, time FROM performance')).rows
      const rowsNotInKafka = keys.filter((k) => !inKafka.has(`${k.host} ${k.time.toISOString()}`)).length
      const audit = auditWithCli(env, false)
      reportFigures('broker-restart', {
        seed, logins: inputs, samplesInKafka: kafkaRecords, distinctSamples: inKafka.size, rows: Number(table.n),
        brokerStopSeconds: seconds(stoppedMs), outageSeconds: seconds(outageMs),
        processorBackAfterRestartSeconds: seconds(processorBackMs), sinkBackAfterRestartSeconds: seconds(sinkBackMs),
        streamRetries: { logins: logins.retries, samples: samples.retries }, stopAfter: before,
        totalSeconds: seconds(Date.now() - started), missing: audit.missing, duplicated: audit.duplicated,
      })
      expect(audit.inputs).toBe(inputs)
      expect(audit.missing).toBe(0)
      expect(audit.code).toBe(0)
      expect(inKafka.size).toBe(SAMPLES)
      expect(Number(table.n)).toBe(SAMPLES)
      expect(Number(table.distinct_keys)).toBe(SAMPLES)
      expect(rowsNotInKafka).toBe(0)
    } finally {
      await after.close()
    }
    // neither was restarted: the same processes, still running, stop cleanly
    expect(alive()).toBe(true)
  } finally {
    logins?.stop()
    samples?.stop()
    processor.kill('SIGTERM')
    sink.kill('SIGTERM')
    exits = await Promise.all([exitOf(processor), exitOf(sink)])
    await db.end().catch(() => {})
    await database.drop().catch(() => {})
    await broker.remove()
  }
  expect(exits?.[0]?.code, processor.output().slice(-2000)).toBe(0)
  expect(exits?.[1]?.code, sink.output().slice(-2000)).toBe(0)
})
