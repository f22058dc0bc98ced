import { expect, inject, it } from 'vitest'
import { openPostgres } from '../../shell/postgres/database.ts'
import { decodeSample } from './decode.ts'
import { ensurePerformanceTable, insertRows } from './performance-table.ts'
import { startSink } from './sink.ts'
import { createTestDatabase, quietLog, testSettings, uniqueName, waitUntil } from '../../../test/support/host-metrics.ts'

it('the sink deletes rows older than METRICS_RETENTION on its timer, and only those', async () => {
  const database = await createTestDatabase(inject('postgresUrl'))
  const db = openPostgres(database.url, 1)
  try {
    await ensurePerformanceTable(db)
    const hour = 3_600_000
    const row = (ageMs: number) => {
      const decoded = decodeSample(Buffer.from(JSON.stringify({ host: 'retained', time: new Date(Date.now() - ageMs).toISOString(), cpu_usage: 1 })), undefined)
      if (!decoded.ok) throw new Error(decoded.error)
      return decoded.row
    }
    const rows = [row(3 * hour), row(2 * hour + 60_000), row(30 * 60_000), row(1000)]
    expect(await insertRows(db, rows)).toBe(4)
    // a replay of the same rows changes nothing (ON CONFLICT DO NOTHING)
    expect(await insertRows(db, rows)).toBe(0)

    const settings = testSettings(inject('kafkaBrokers'), { DATABASE_URL: database.url, METRICS_RETENTION: '2h' })
    const sink = await startSink({ settings, log: quietLog(), groupId: uniqueName('sink'), retentionCheckMs: 200 })
    try {
      const left = await waitUntil(async () => {
        const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM performance')
        return rows[0]!.n === 2 ? rows : undefined
      }, 'the two expired rows to go', 20_000)
      expect(left[0]!.n).toBe(2)
      const oldest = (await db.query<{ oldest: Date }>('SELECT min(time) AS oldest FROM performance')).rows[0]!.oldest
      expect(Date.now() - oldest.getTime()).toBeLessThan(2 * hour)
    } finally {
      await sink.stop()
    }
  } finally {
    await db.close()
    await database.drop()
  }
})
