import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, inject, it } from 'vitest'
import { openPostgres, type Database } from './database.ts'
import { retentionCheckMs, SinkDatabase } from './sink-database.ts'
import { createTestDatabase, quietLog, waitUntil } from '../../../test/support/host-metrics.ts'

it('checks retention a tenth as often as it keeps rows, between 1 and 10 minutes', () => {
  const minute = 60_000
  expect(retentionCheckMs(7 * 24 * 60 * minute)).toBe(10 * minute)
  expect(retentionCheckMs(60 * minute)).toBe(6 * minute)
  expect(retentionCheckMs(5 * minute)).toBe(minute)
})

/** A table of `ages` (ms before now) and a delete of the rows older than the retention, counting its calls. */
async function agedRows(db: Database, table: string, ages: number[]) {
  await db.query(`CREATE TABLE ${table} (at timestamptz NOT NULL)`)
  for (const age of ages) await db.query(`INSERT INTO ${table} (at) VALUES ($1)`, [new Date(Date.now() - age).toISOString()])
  let calls = 0
  return {
    calls: () => calls,
    count: async (on: Database = db) => Number((await on.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows[0]!.n),
    deleteExpired: async (on: Database, retentionMs: number) => {
      calls++
      return (await on.query(`DELETE FROM ${table} WHERE at < $1`, [new Date(Date.now() - retentionMs).toISOString()])).rowCount
    },
  }
}

describe('the database of a sink', () => {
  it('on PostgreSQL: opened from DATABASE_URL, ready while it answers, retention on a timer, closed with the sink', async () => {
    const database = await createTestDatabase(inject('postgresUrl'))
    const observer = openPostgres(database.url, 1)
    try {
      const sinkDb = new SinkDatabase({ DATABASE_URL: database.url, KPIPE_DATA_DIR: '.kpipe' })
      expect(await sinkDb.ready()).toBe(false)
      const db = await sinkDb.open()
      expect(sinkDb.current).toBe(db)
      expect(await sinkDb.ready()).toBe(true)
      const rows = await agedRows(db, 'aged', [3_600_000, 7_200_000, 1000])
      expect(sinkDb.startRetention({ deleteExpired: rows.deleteExpired, what: 'row(s)', retentionMs: 60_000, everyMs: 50, log: quietLog() })).toBe(50)
      await waitUntil(async () => (await rows.count(observer)) === 1, 'the two expired rows to go')
      await waitUntil(() => rows.calls() >= 2, 'a second turn of the retention loop')

      await sinkDb.close()
      const calls = rows.calls()
      // the loop has stopped, and the database it opened is closed
      await expect(db.query('SELECT 1')).rejects.toThrow()
      await expect(sinkDb.ready()).rejects.toThrow()
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(rows.calls()).toBe(calls)
    } finally {
      await observer.close()
      await database.drop()
    }
  })

  it('on PGlite handed in: used as it is, and left open for its owner', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-sink-db-'))
    const settings = { DATABASE_URL: undefined, KPIPE_DATA_DIR: dataDir }
    const owner = new SinkDatabase(settings)
    try {
      const shared = await owner.open()
      expect(shared.kind).toBe('pglite')
      const sinkDb = new SinkDatabase(settings, shared)
      expect(await sinkDb.open()).toBe(shared)
      expect(await sinkDb.ready()).toBe(true)
      const rows = await agedRows(shared, 'aged', [7_200_000, 1000])
      sinkDb.startRetention({ deleteExpired: rows.deleteExpired, what: 'row(s)', retentionMs: 3_600_000, everyMs: 50, log: quietLog() })
      await waitUntil(async () => (await rows.count()) === 1, 'the expired row to go')
      await sinkDb.close()
      expect(await rows.count()).toBe(1)
      expect(await owner.ready()).toBe(true)
    } finally {
      await owner.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
