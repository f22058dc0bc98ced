import { readFileSync, statfsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { kafkaConnection } from '../shell/kafka/connection.ts'
import { createProducer } from '../shell/kafka/producer.ts'
import { headerText } from '../shell/kafka/records.ts'
import { openDatabase } from '../shell/postgres/database.ts'
import type { Settings } from '../shell/settings.ts'
import { Collector } from './collector/collector.ts'
import { startSink, type RunningSink } from './sink/sink.ts'
import { collectTopic, createTestDatabase, quietLog, testSettings, uniqueName, waitUntil } from '../../test/support/host-metrics.ts'

type Row = {
  host: string
  time: Date
  cpu_usage: string | null
  memory_usage: string | null
  cpu_interrupts: string | null
  cpu_calls: string | null
  memory_used: string | null
  memory_free: string | null
  bytes_sent: string | null
  bytes_received: string | null
  disk_usage: string | null
}

const meminfoBytes = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024

/**
 * The collector and the sink, in process, against the real broker and a real PostgreSQL
 * database of this file's own; the same again through embedded PGlite.
 */
describe.each(['postgres', 'pglite'] as const)('host metrics pipeline through %s', (kind) => {
  let settings: Settings
  let sink: RunningSink
  let dropDatabase: (() => Promise<void>) | undefined
  let dataDir: string | undefined

  beforeAll(async () => {
    const extra: Record<string, string> = {}
    if (kind === 'postgres') {
      const database = await createTestDatabase(inject('postgresUrl'))
      extra.DATABASE_URL = database.url
      dropDatabase = database.drop
    } else {
      const { mkdtempSync } = await import('node:fs')
      const { tmpdir } = await import('node:os')
      const { join } = await import('node:path')
      dataDir = mkdtempSync(join(tmpdir(), 'kpipe-pglite-'))
      extra.KPIPE_DATA_DIR = dataDir
    }
    settings = testSettings(inject('kafkaBrokers'), extra)
    sink = await startSink({ settings, log: quietLog(), groupId: uniqueName('sink') })
  })

  afterAll(async () => {
    await sink?.stop()
    await dropDatabase?.()
    if (dataDir) (await import('node:fs')).rmSync(dataDir, { recursive: true, force: true })
  })

  const rowsOf = async (host: string) => (await sink.db.query<Row>('SELECT * FROM performance WHERE host = $1 ORDER BY time', [host])).rows

  it('samples for a few seconds become rows that agree with /proc/meminfo and statfs of /', async () => {
    const host = uniqueName('host')
    const producer = createProducer(kafkaConnection(settings))
    const collector = new Collector({ producer, topic: settings.TOPIC_PERFORMANCE, host, intervalMs: 200, log: quietLog() })
    collector.start()
    let latest: { time: number; used: number; free: number }
    try {
      await waitUntil(async () => (await rowsOf(host)).length >= 12, '12 rows of the collector', 30_000).catch((e: Error) => {
        throw new Error(`${e.message}; sent ${collector.sent}, sink committed ${sink.loop.records} in ${sink.loop.batches} batches`)
      })
      // /proc/meminfo read right now, against the sample taken closest to now
      latest = { time: Date.now(), used: meminfoBytes('MemTotal') - meminfoBytes('MemAvailable'), free: meminfoBytes('MemFree') }
    } finally {
      await collector.stop()
      await producer.close()
    }
    const rows = await rowsOf(host)
    const total = meminfoBytes('MemTotal')
    const used = latest.used
    const closest = rows.reduce((best, row) => (Math.abs(row.time.getTime() - latest.time) < Math.abs(best.time.getTime() - latest.time) ? row : best))
    // within 1 % of total memory (MemFree and MemAvailable differ by far more on a machine with a page cache)
    expect(Math.abs(Number(closest.memory_used) - latest.used)).toBeLessThan(total * 0.01)
    expect(Math.abs(Number(closest.memory_free) - latest.free)).toBeLessThan(total * 0.01)
    const root = statfsSync('/')
    const diskUsed = root.blocks - root.bfree
    const diskPercent = (diskUsed / (diskUsed + root.bavail)) * 100
    const interrupts = Number(/^intr (\d+)/m.exec(readFileSync('/proc/stat', 'utf8'))![1])
    for (const row of rows) {
      expect(Math.abs(Number(row.memory_used) - used)).toBeLessThan(total * 0.05)
      expect(Math.abs(Number(row.memory_usage) - (used / total) * 100)).toBeLessThan(5)
      expect(Number(row.memory_free)).toBeGreaterThan(0)
      expect(Number(row.memory_free)).toBeLessThanOrEqual(total)
      expect(Math.abs(Number(row.disk_usage) - diskPercent)).toBeLessThan(1)
      expect(row.cpu_usage).not.toBeNull()
      expect(Number(row.cpu_usage)).toBeGreaterThanOrEqual(0)
      expect(Number(row.cpu_usage)).toBeLessThanOrEqual(100)
      expect(row.cpu_calls).toBeNull()
      expect(Number(row.cpu_interrupts)).toBeGreaterThan(0)
      expect(Number(row.cpu_interrupts)).toBeLessThanOrEqual(interrupts)
    }
    // one row per 200 ms tick, on the tick: nothing lost, no drift. A tick the collector could not
    // sample in time (a busy machine) is skipped by design and counted: only such ticks may be
    // missing between two rows (without a skip every gap is exactly one tick)
    const times = rows.map((r) => r.time.getTime())
    for (const t of times) expect(t % 200).toBe(0)
    let missing = 0
    for (let i = 1; i < rows.length; i++) {
      const gap = times[i]! - times[i - 1]!
      expect(gap).toBeGreaterThanOrEqual(200)
      expect(gap % 200).toBe(0)
      missing += gap / 200 - 1
      for (const counter of ['cpu_interrupts', 'bytes_sent', 'bytes_received'] as const) {
        expect(BigInt(rows[i]![counter]!)).toBeGreaterThanOrEqual(BigInt(rows[i - 1]![counter]!))
      }
    }
    expect(missing).toBeLessThanOrEqual(collector.skipped)
    // the broker's own traffic on this machine moves the interrupt counter
    expect(BigInt(rows.at(-1)!.cpu_interrupts!)).toBeGreaterThan(BigInt(rows[0]!.cpu_interrupts!))
  })

  it('a record in the original comma-separated format becomes a row; garbage goes to performance-errors with its lineage', async () => {
    const errors = collectTopic(settings, settings.TOPIC_PERFORMANCE_ERRORS)
    const producer = createProducer(kafkaConnection(settings))
    const host = uniqueName('csv-host')
    try {
      const now = new Date()
      const pad = (n: number, width = 2) => String(n).padStart(width, '0')
      const naive = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.123456`
      await producer.send({
        messages: [
          { topic: settings.TOPIC_PERFORMANCE, key: host, value: `${naive}, 12.5, 45.2, 123,0,7340032000,1048576000,123456,654321, 57.3` },
          { topic: settings.TOPIC_PERFORMANCE, key: host, value: 'this is not a sample' },
          { topic: settings.TOPIC_PERFORMANCE, value: Buffer.from([0xff, 0x00, 0xfe]) },
          { topic: settings.TOPIC_PERFORMANCE, key: host, value: JSON.stringify({ host, time: now.toISOString(), cpu_usage: 250 }) },
          // decodes, but PostgreSQL text cannot hold a NUL: the database refuses this one row, not the batch
          { topic: settings.TOPIC_PERFORMANCE, key: host, value: JSON.stringify({ host: `${host}\u0000nul`, time: now.toISOString(), cpu_usage: 1 }) },
        ],
      })
      const [row] = await waitUntil(async () => {
        const found = await rowsOf(host)
        return found.length > 0 ? found : undefined
      }, 'the CSV row')
      expect(row).toMatchObject({ host, cpu_usage: '12.50', memory_usage: '45.20', cpu_interrupts: '123', cpu_calls: '0', memory_used: '7340032000', memory_free: '1048576000', bytes_sent: '123456', bytes_received: '654321', disk_usage: '57.30' })
      // naive local time, microseconds kept
      const micros = (await sink.db.query<{ us: string }>(`SELECT extract(microseconds FROM time)::text AS us FROM performance WHERE host = $1`, [host])).rows[0]!.us
      expect(Number(micros)).toBe(now.getSeconds() * 1_000_000 + 123456)
      expect(row!.time.getTime()).toBe(new Date(now.getFullYear(), now.getMonth(), now.getDate(), now.getHours(), now.getMinutes(), now.getSeconds(), 123).getTime())

      await waitUntil(() => errors.records.length >= 4, 'four error records')
      // records without a key may land on another partition: find each by its kind, not by order
      const byType = new Map(errors.records.map((record) => {
        const body = JSON.parse(record.value!.toString('utf8')) as Record<string, unknown>
        return [body.error_type as string, { record, body }]
      }))
      expect([...byType.keys()].sort()).toEqual(['invalid_encoding', 'invalid_json', 'invalid_sample', 'rejected_by_database'])
      expect(byType.get('invalid_json')!.body).toMatchObject({ raw: 'this is not a sample', host, source_topic: settings.TOPIC_PERFORMANCE })
      expect(Buffer.from(byType.get('invalid_encoding')!.body.raw_base64 as string, 'base64')).toEqual(Buffer.from([0xff, 0x00, 0xfe]))
      expect(byType.get('invalid_sample')!.body.error).toMatch(/cpu_usage/)
      for (const { record, body } of byType.values()) {
        expect(headerText(record, 'source-topic')).toBe(settings.TOPIC_PERFORMANCE)
        expect(headerText(record, 'source-partition')).toBe(String(body.source_partition))
        expect(headerText(record, 'source-offset')).toBe(String(body.source_offset))
      }
      expect(byType.get('invalid_json')!.record.key?.toString()).toBe(host)
      expect(byType.get('invalid_encoding')!.record.key).toBeUndefined()
    } finally {
      await producer.close()
      await errors.stop()
    }
  })

  it('creates its schema idempotently: a second sink on the same database starts and shares the work', async () => {
    // PGlite's files serve one instance: a second sink in the same process shares the first one's
    const second = await startSink({ settings, log: quietLog(), groupId: uniqueName('sink'), ...(kind === 'pglite' ? { db: sink.db } : {}) })
    await second.stop()
    if (kind === 'pglite') return
    const db = await openDatabase(settings)
    try {
      const { rows } = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_indexes WHERE tablename = 'performance'`)
      expect(rows[0]!.n).toBe('2')
    } finally {
      await db.close()
    }
  })
})
