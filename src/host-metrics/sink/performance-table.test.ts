import { describe, expect, inject, it } from 'vitest'
import { openPostgres, type Database } from '../../shell/postgres/database.ts'
import { decodeSample, type SampleRow } from './decode.ts'
import { ensurePerformanceTable, insertRows } from './performance-table.ts'
import { createTestDatabase } from '../../../test/support/host-metrics.ts'
import { withPglite } from '../../../test/support/pglite.ts'

const HOSTS = ['web-1', 'tab\there', 'new\nline', 'cr\rhere', 'back\\slash', '\\N', '"quoted"', 'ünï ✓', ' spaced ', 'comma,semi;']

const sample = (host: string, i: number): SampleRow => {
  const decoded = decodeSample(Buffer.from(JSON.stringify({
    host, time: new Date(Date.UTC(2026, 0, 1) + i * 500).toISOString(), cpu_usage: i % 2 ? 12.345 : null, memory_usage: 43.1,
    cpu_interrupts: 123_456_789 + i, cpu_calls: null, memory_used: 7_340_032_000, bytes_sent: 123_456_789_012_345 + i, disk_usage: 100,
  })), undefined)
  if (!decoded.ok) throw new Error(decoded.error)
  return decoded.row
}

/** The database, and how many statements other than COPY the writes took (none, when COPY did it). */
function counting(db: Database) {
  const counted = { queries: 0, db: { query: ((sql: string, params?: unknown[]) => { counted.queries++; return db.query(sql, params) }) as Database['query'], copyRows: db.copyRows } }
  return counted
}

async function writesEveryRowAsItCame(db: Database) {
  await ensurePerformanceTable(db)
  const rows = HOSTS.flatMap((host, h) => Array.from({ length: 30 }, (_, i) => sample(host, h * 100 + i)))
  const writer = counting(db)
  expect(await insertRows(writer.db, rows)).toBe(rows.length)
  // a fresh batch went in as one COPY, not through the INSERT
  expect(writer.queries).toBe(0)

  const { rows: stored } = await db.query<{ host: string; time: string; cpu_usage: string | null; cpu_calls: string | null; bytes_sent: string; disk_usage: string }>(
    `SELECT host, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS time, cpu_usage::text, cpu_calls::text, bytes_sent::text, disk_usage::text FROM performance ORDER BY time`)
  expect(stored.map((r) => r.host)).toEqual(rows.map((r) => r.host))
  expect(stored.map((r) => r.time)).toEqual(rows.map((r) => r.time))
  expect(stored[0]).toMatchObject({ cpu_usage: null, cpu_calls: null, bytes_sent: rows[0]!.values.bytes_sent, disk_usage: '100.00' })
  expect(stored[1]!.cpu_usage).toBe(Number(rows[1]!.values.cpu_usage).toFixed(2))

  // a replay mixed with new rows: the batch is refused by COPY and written by the INSERT, only the new rows count
  const more = [...rows.slice(0, 50), ...HOSTS.map((host, h) => sample(host, 5000 + h))]
  const replay = counting(db)
  expect(await insertRows(replay.db, more)).toBe(HOSTS.length)
  expect(replay.queries).toBe(1)
  expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM performance')).rows[0]!.n).toBe(rows.length + HOSTS.length)

  // a host the database refuses still fails the batch with its SQLSTATE (the sink bisects on it)
  await expect(insertRows(db, [sample('nul\u0000host', 9000)])).rejects.toMatchObject({ code: expect.stringMatching(/^22/) })
}

describe('writing samples to the performance table', () => {
  it('PostgreSQL: COPY for new rows, the INSERT for replays, every host name and value as it came', async () => {
    const database = await createTestDatabase(inject('postgresUrl'))
    const db = openPostgres(database.url, 1)
    try {
      await writesEveryRowAsItCame(db)
      // the refused COPY left the connection usable
      expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    } finally {
      await db.close()
      await database.drop()
    }
  })

  it('PGlite: the same, through COPY FROM /dev/blob', async () => {
    await withPglite(writesEveryRowAsItCame)
  })
})
