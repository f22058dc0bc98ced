import { Writable } from 'node:stream'
import { pino } from 'pino'
import { expect, inject, it } from 'vitest'
import { freePort } from '../../shell/broker/local-broker.ts'
import { kafkaConnection } from '../../shell/kafka/connection.ts'
import { createProducer } from '../../shell/kafka/producer.ts'
import { openPostgres } from '../../shell/postgres/database.ts'
import { startSink, type RunningSink } from './sink.ts'
import { removePostgres, startPostgres } from '../../../test/support/postgres-server.ts'
import { testSettings, uniqueName, waitUntil } from '../../../test/support/host-metrics.ts'

/**
 * A PostgreSQL server of this test's own (stopping the shared one would fail other test
 * files running at the same time), stopped while records keep arriving, then started again.
 */
it('PostgreSQL stopped mid-stream and started again: every record produced meanwhile becomes a row, none twice', async () => {
  const server = startPostgres(await freePort())
  const warnings: string[] = []
  const log = pino({ level: 'warn' }, new Writable({ write: (chunk: Buffer, _encoding, done) => void (warnings.push(chunk.toString()), done()) }))
  const settings = testSettings(inject('kafkaBrokers'), { DATABASE_URL: server.url })
  const producer = createProducer(kafkaConnection(settings))
  const checker = openPostgres(server.url, 1)
  let sink: RunningSink | undefined
  try {
    sink = await startSink({ settings, log, groupId: uniqueName('sink') })
    const running = sink
    const host = uniqueName('outage')
    const start = Date.parse('2026-11-24T10:00:00.000Z')
    const samples = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => ({
        topic: settings.TOPIC_PERFORMANCE,
        key: host,
        value: JSON.stringify({ host, time: new Date(start + (from + i) * 500).toISOString(), cpu_usage: (from + i) % 100, memory_usage: 40, cpu_interrupts: from + i, cpu_calls: null, memory_used: 1, memory_free: 2, bytes_sent: 3, bytes_received: 4, disk_usage: 50 }),
      }))
    const rowCount = async () => Number((await checker.query<{ n: string }>('SELECT count(*) AS n FROM performance WHERE host = $1', [host])).rows[0]!.n)
    // a wait that fails says what the sink had done by then: rows, records committed, its warnings
    const until = <T>(check: () => T | Promise<T>, what: string, timeoutMs?: number) =>
      waitUntil(check, what, timeoutMs).catch(async (error: unknown) => {
        const rows = await rowCount().catch((e: unknown) => String(e))
        throw new Error(`${error instanceof Error ? error.message : String(error)}; rows ${rows}, batches ${running.loop.batches} of ${running.loop.records} records committed, partitions assigned ${JSON.stringify(running.loop.assignments)}, the sink's warnings:\n${warnings.join('') || '(none)'}`)
      })

    await producer.send({ messages: samples(0, 50) })
    await until(async () => (await rowCount()) === 50, 'the first 50 rows')
    await until(() => running.loop.records === 50, 'the first 50 records committed')

    server.stop()
    try {
      await producer.send({ messages: samples(50, 60) })
      await producer.send({ messages: samples(110, 40) })
      await until(() => warnings.some((w) => w.includes('nothing committed')), 'the sink to report the database away and retry', 20_000)
      // while the database is away, no offset moves
      expect(running.loop.records).toBe(50)
    } finally {
      server.start()
    }

    await until(async () => (await rowCount()) === 150, 'all 150 rows after the restart', 40_000)
    await until(() => running.loop.records === 150, 'all 150 records committed')
    const { rows } = await checker.query<{ n: string; times: string; first: string; last: string }>(
      'SELECT count(*) AS n, count(DISTINCT time) AS times, min(cpu_interrupts)::text AS first, max(cpu_interrupts)::text AS last FROM performance WHERE host = $1',
      [host],
    )
    expect(rows[0]).toEqual({ n: '150', times: '150', first: '0', last: '149' })
    // every record was handled and committed once: a re-delivered batch would count again here
    expect(running.loop.records).toBe(150)
    expect(warnings.some((w) => /unavailable|ECONNREFUSED|terminat/i.test(w))).toBe(true)
  } finally {
    await sink?.stop()
    await producer.close()
    await checker.close().catch(() => {})
    removePostgres(server)
  }
})
