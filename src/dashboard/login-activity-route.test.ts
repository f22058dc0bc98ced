import Fastify from 'fastify'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { openPostgres, type Database } from '../shell/postgres/database.ts'
import { createTestDatabase } from '../../test/support/host-metrics.ts'
import { ensureLoginActivityTables, writeActivityBatch } from '../logins/sink/activity-table.ts'
import type { ActivityRow } from '../logins/sink/login-activity.ts'
import { loginActivity, loginActivityRoutes, NO_TABLE, OTHER_VALUE } from './login-activity-route.ts'

const NOW = Date.parse('2026-12-04T12:00:30Z')
const MIN = 60_000
const row = (minutesAgo: number, outcome: string, logins: number, extra: Partial<ActivityRow> = {}): ActivityRow => ({
  minute: Math.floor(NOW / MIN) * MIN - minutesAgo * MIN, outcome, deviceType: 'android', locale: 'RU', appVersion: '2.3.0', logins, ...extra,
})

describe('the login activity API', () => {
  let database: { url: string; drop(): Promise<void> }
  let db: Database
  beforeAll(async () => {
    database = await createTestDatabase(inject('postgresUrl'))
    db = openPostgres(database.url, 2)
    await ensureLoginActivityTables(db)
    await writeActivityBatch(db, 'api', [
      row(0, 'processed', 30),
      row(0, 'error:invalid_json', 2, { deviceType: '', locale: '', appVersion: '' }),
      row(1, 'processed', 10, { deviceType: 'iOS', locale: 'US' }),
      row(1, 'filtered:stale', 4),
      row(90, 'processed', 600), // outside 1 h, inside 24 h
      row(3 * 24 * 60, 'processed', 5000), // inside 7 d only
      row(8 * 24 * 60, 'processed', 99_999), // outside every range
      ...Array.from({ length: 12 }, (_, i) => row(2, 'processed', 1, { locale: `L${String(i).padStart(2, '0')}` })),
    ], [])
  })
  afterAll(async () => {
    await db.close()
    await database.drop()
  })

  it('1 h: logins per minute by outcome in one-minute buckets, and the splits over the hour', async () => {
    const view = await loginActivity(db, '1h', NOW)
    expect(view.bucket_ms).toBe(MIN)
    expect(view.per_minute.time).toHaveLength(60)
    expect(view.to).toBe('2026-12-04T12:01:00.000Z')
    expect(view.total).toBe(30 + 2 + 10 + 4 + 12)
    const last = view.per_minute.time.length - 1
    expect(view.per_minute.outcomes.processed![last]).toBe(30)
    expect(view.per_minute.outcomes.processed![last - 1]).toBe(10)
    expect(view.per_minute.outcomes.processed![last - 2]).toBe(12)
    expect(view.per_minute.outcomes['filtered:stale']![last - 1]).toBe(4)
    expect(view.per_minute.outcomes['error:invalid_json']![last]).toBe(2)
    expect(view.split.outcome).toEqual([{ value: 'processed', logins: 52 }, { value: 'filtered:stale', logins: 4 }, { value: 'error:invalid_json', logins: 2 }])
    expect(view.split.device_type).toEqual([{ value: 'android', logins: 46 }, { value: 'iOS', logins: 10 }, { value: '', logins: 2 }])
    // ten values at most: the nine largest and the rest as one
    expect(view.split.locale).toHaveLength(10)
    expect(view.split.locale.slice(0, 2)).toEqual([{ value: 'RU', logins: 34 }, { value: 'US', logins: 10 }])
    // RU, US, unknown and L00–L05 shown; L06–L11 summed
    expect(view.split.locale.at(-1)).toEqual({ value: OTHER_VALUE, logins: 6 })
    expect(view.split.locale.reduce((s, e) => s + e.logins, 0)).toBe(view.total)
  })

  it('24 h and 7 d: wider buckets, per-minute averages, and only the rows in range', async () => {
    const day = await loginActivity(db, '24h', NOW)
    expect(day.bucket_ms).toBe(5 * MIN)
    expect(day.per_minute.time).toHaveLength(288)
    expect(day.total).toBe(58 + 600)
    const processed = day.per_minute.outcomes.processed!
    // 600 logins in one five-minute bucket are 120 per minute
    expect(processed).toContain(120)
    expect(processed.reduce((s, v) => s + v, 0) * 5).toBe(52 + 600)
    const week = await loginActivity(db, '7d', NOW)
    expect(week.bucket_ms).toBe(60 * MIN)
    expect(week.per_minute.time).toHaveLength(168)
    expect(week.total).toBe(58 + 600 + 5000)
  })

  it('over HTTP, with a clear error for an unknown range, and no database reported as such', async () => {
    const app = Fastify()
    await app.register(loginActivityRoutes, { db })
    const ok = await app.inject({ url: '/api/logins/activity?range=24h' })
    expect(ok.statusCode).toBe(200)
    expect(ok.json()).toMatchObject({ range: '24h', bucket_ms: 300_000, history_unavailable: null })
    const bad = await app.inject({ url: '/api/logins/activity?range=1y' })
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error).toMatch(/1h, 24h, 7d/)
    await app.close()
    const without = Fastify()
    await without.register(loginActivityRoutes, { db: undefined, historyUnavailable: 'the embedded database is in use' })
    expect((await without.inject({ url: '/api/logins/activity' })).json()).toMatchObject({ total: 0, history_unavailable: 'the embedded database is in use' })
    await without.close()
  })

  it('a database without the table yet: an empty view that says so', async () => {
    const empty = await createTestDatabase(inject('postgresUrl'))
    const other = openPostgres(empty.url, 1)
    try {
      const view = await loginActivity(other, '1h', NOW)
      expect(view).toMatchObject({ total: 0, history_unavailable: NO_TABLE, per_minute: { outcomes: {} } })
      expect(view.per_minute.time).toHaveLength(60)
    } finally {
      await other.close()
      await empty.drop()
    }
  })
})
