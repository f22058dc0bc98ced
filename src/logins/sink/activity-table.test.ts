import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { openPglite, openPostgres, type Database } from '../../shell/postgres/database.ts'
import { createTestDatabase, waitUntil } from '../../../test/support/host-metrics.ts'
import { deleteExpiredActivity, ensureLoginActivityTables, partitionKey, readStoredOffsets, StaleOffsetsError, writeActivityBatch, type OffsetAdvance } from './activity-table.ts'
import type { ActivityRow } from './login-activity.ts'

const MINUTE = Date.parse('2026-12-04T10:00:00Z')
const row = (overrides: Partial<ActivityRow> = {}): ActivityRow => ({ minute: MINUTE, outcome: 'processed', deviceType: 'android', locale: 'RU', appVersion: '2.3.0', logins: 1, ...overrides })
const advance = (partition: number, expected: bigint | null, next: bigint, topic = 'processed-output'): OffsetAdvance => ({ topic, partition, expected, next })

type StoredRow = { minute: string; outcome: string; device_type: string; locale: string; app_version: string; logins: string }

async function activity(db: Database): Promise<StoredRow[]> {
  const { rows } = await db.query<StoredRow>(`SELECT to_char(minute AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI') AS minute, outcome, device_type, locale, app_version, logins::text AS logins
    FROM login_activity ORDER BY minute, outcome, device_type, locale, app_version`)
  return rows
}

async function offsets(db: Database, consumer: string): Promise<Record<string, string>> {
  const { rows } = await db.query<{ topic: string; partition: number; next_offset: string }>('SELECT topic, partition, next_offset::text AS next_offset FROM kpipe_offsets WHERE consumer = $1', [consumer])
  return Object.fromEntries(rows.map((r) => [`${r.topic}/${r.partition}`, r.next_offset]))
}

const databases: [string, () => Promise<{ db: Database; done(): Promise<void> }>][] = [
  ['PostgreSQL', async () => {
    const database = await createTestDatabase(inject('postgresUrl'))
    const db = openPostgres(database.url, 2)
    return { db, async done() {
      await db.close()
      await database.drop()
    } }
  }],
  ['PGlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kpipe-activity-'))
    const db = await openPglite(join(dir, 'pg'))
    return { db, async done() {
      await db.close()
      rmSync(dir, { recursive: true, force: true })
    } }
  }],
]

describe.each(databases)('the login activity store on %s', (_name, open) => {
  let db: Database
  let done: () => Promise<void>
  beforeAll(async () => {
    ;({ db, done } = await open())
    await ensureLoginActivityTables(db)
  })
  afterAll(async () => done())

  it('creates the tables of SPEC.md, idempotently', async () => {
    await ensureLoginActivityTables(db)
    const { rows } = await db.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(
      `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
       WHERE table_name IN ('login_activity', 'kpipe_offsets') ORDER BY table_name, ordinal_position`)
    expect(rows.map((r) => `${r.table_name}.${r.column_name} ${r.data_type} ${r.is_nullable === 'NO' ? 'NOT NULL' : ''}`.trim())).toEqual([
      'kpipe_offsets.consumer text NOT NULL',
      'kpipe_offsets.topic text NOT NULL',
      'kpipe_offsets.partition integer NOT NULL',
      'kpipe_offsets.next_offset bigint NOT NULL',
      'login_activity.minute timestamp with time zone NOT NULL',
      'login_activity.outcome text NOT NULL',
      'login_activity.device_type text NOT NULL',
      'login_activity.locale text NOT NULL',
      'login_activity.app_version text NOT NULL',
      'login_activity.logins bigint NOT NULL',
    ])
    const key = await db.query<{ column_name: string }>(
      `SELECT a.attname AS column_name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
       WHERE i.indrelid = 'login_activity'::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`)
    expect(key.rows.map((r) => r.column_name)).toEqual(['minute', 'outcome', 'device_type', 'locale', 'app_version'])
  })

  it('writes counts and offsets together; later batches add to the same minute', async () => {
    const consumer = 'adds'
    await db.query('DELETE FROM login_activity')
    await writeActivityBatch(db, consumer, [row({ logins: 3 }), row({ locale: 'US', logins: 2 })], [advance(0, null, 5n), advance(1, null, 10n)])
    expect(await offsets(db, consumer)).toEqual({ 'processed-output/0': '5', 'processed-output/1': '10' })
    // a late event of the same minute, and a new minute; partition 0 moves on, partition 1 stays
    await writeActivityBatch(db, consumer, [row({ logins: 4 }), row({ minute: MINUTE + 60_000, outcome: 'error:invalid_json', deviceType: '', locale: '', appVersion: '' })], [advance(0, 5n, 9n)])
    expect(await offsets(db, consumer)).toEqual({ 'processed-output/0': '9', 'processed-output/1': '10' })
    expect(await activity(db)).toEqual([
      { minute: '2026-12-04T10:00', outcome: 'processed', device_type: 'android', locale: 'RU', app_version: '2.3.0', logins: '7' },
      { minute: '2026-12-04T10:00', outcome: 'processed', device_type: 'android', locale: 'US', app_version: '2.3.0', logins: '2' },
      { minute: '2026-12-04T10:01', outcome: 'error:invalid_json', device_type: '', locale: '', app_version: '', logins: '1' },
    ])
  })

  it('a writer whose position is stale writes nothing: neither counts nor offsets', async () => {
    const consumer = 'stale'
    await db.query('DELETE FROM login_activity')
    await writeActivityBatch(db, consumer, [row()], [advance(0, null, 100n), advance(1, null, 50n)])
    const before = await activity(db)
    // from a position it did not read (another writer moved on), and as if the partition were new
    await expect(writeActivityBatch(db, consumer, [row({ logins: 99 })], [advance(0, 90n, 120n)])).rejects.toBeInstanceOf(StaleOffsetsError)
    await expect(writeActivityBatch(db, consumer, [row({ logins: 99 })], [advance(1, null, 60n)])).rejects.toThrow(/processed-output\/1/)
    // one stale partition among good ones spoils the whole batch
    const error = await writeActivityBatch(db, consumer, [row({ logins: 99 })], [advance(0, 100n, 130n), advance(1, 40n, 60n)]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StaleOffsetsError)
    expect((error as StaleOffsetsError).partitions).toEqual([{ topic: 'processed-output', partition: 1 }])
    expect(await activity(db)).toEqual(before)
    expect(await offsets(db, consumer)).toEqual({ 'processed-output/0': '100', 'processed-output/1': '50' })
  })

  it('counts the database refuses roll the offsets back too', async () => {
    const consumer = 'refused'
    await writeActivityBatch(db, consumer, [], [advance(0, null, 7n)])
    // 10^20 does not fit a bigint: the upsert fails after the offsets moved, in the same transaction
    await expect(writeActivityBatch(db, consumer, [row({ logins: 1e20 })], [advance(0, 7n, 8n)])).rejects.toMatchObject({ code: '22003' })
    expect(await offsets(db, consumer)).toEqual({ 'processed-output/0': '7' })
  })

  it('reads the stored offsets of the partitions asked for, of this consumer only', async () => {
    await writeActivityBatch(db, 'reader-a', [], [advance(0, null, 11n), advance(2, null, 13n), advance(0, null, 17n, 'cleaned-data')])
    await writeActivityBatch(db, 'reader-b', [], [advance(1, null, 99n)])
    const stored = await readStoredOffsets(db, 'reader-a', [0, 1, 2].map((partition) => ({ topic: 'processed-output', partition })).concat([{ topic: 'cleaned-data', partition: 0 }]))
    expect(Object.fromEntries([...stored].map(([k, v]) => [k.replace('\0', '/'), v]))).toEqual({ 'processed-output/0': 11n, 'processed-output/2': 13n, 'cleaned-data/0': 17n })
    expect(stored.get(partitionKey({ topic: 'processed-output', partition: 0 }))).toBe(11n)
    expect(await readStoredOffsets(db, 'reader-a', [])).toEqual(new Map())
    // offsets beyond 2^53 survive the round trip
    await writeActivityBatch(db, 'reader-c', [], [advance(0, null, 9_007_199_254_740_993n)])
    expect((await readStoredOffsets(db, 'reader-c', [{ topic: 'processed-output', partition: 0 }])).get(partitionKey({ topic: 'processed-output', partition: 0 }))).toBe(9_007_199_254_740_993n)
  })

  it('keeps dimensions as given: quotes, backslashes, "NULL", unicode and the empty string', async () => {
    await db.query('DELETE FROM login_activity')
    const odd = ['"quoted"', 'back\\slash', 'NULL', '日本 🍎', '', '{a,b}', ' spaced ']
    await writeActivityBatch(db, 'odd', odd.map((locale) => row({ locale })), [])
    const { rows } = await db.query<{ locale: string }>('SELECT locale FROM login_activity')
    expect(rows.map((r) => r.locale).sort()).toEqual([...odd].sort())
  })

  it('deletes the minutes older than the retention, and only those', async () => {
    await db.query('DELETE FROM login_activity')
    const now = Date.parse('2026-12-04T12:00:30Z')
    const hour = 3_600_000
    await writeActivityBatch(db, 'retention', [row({ minute: now - 3 * hour - 30_000 }), row({ minute: now - 2 * hour - 30_000 }), row({ minute: now - hour - 30_000 }), row({ minute: now - 30_000 })], [])
    expect(await deleteExpiredActivity(db, 2 * hour, now)).toBe(2)
    expect((await activity(db)).map((r) => r.minute)).toEqual(['2026-12-04T11:00', '2026-12-04T12:00'])
  })
})

describe('the login activity store under concurrent writers (PostgreSQL)', () => {
  let database: { url: string; drop(): Promise<void> }
  beforeAll(async () => {
    database = await createTestDatabase(inject('postgresUrl'))
  })
  afterAll(async () => database.drop())

  it('several processes creating the tables at once all succeed', async () => {
    const dbs = Array.from({ length: 6 }, () => openPostgres(database.url, 1))
    try {
      const results = await Promise.allSettled(dbs.map((db) => ensureLoginActivityTables(db)))
      expect(results.filter((r) => r.status === 'rejected')).toEqual([])
    } finally {
      await Promise.all(dbs.map((db) => db.close()))
    }
  })

  it('of two writers from the same position, the one that waits for the other\'s commit fails and writes nothing', async () => {
    const db = openPostgres(database.url, 2)
    const holder = new pg.Client({ connectionString: database.url })
    await holder.connect()
    try {
      await ensureLoginActivityTables(db)
      await writeActivityBatch(db, 'race', [], [advance(0, null, 100n)])
      // the new owner of the partition commits its batch 100 → 150 while the old owner's batch 100 → 200 is in flight
      await holder.query('BEGIN')
      await holder.query("UPDATE kpipe_offsets SET next_offset = 150 WHERE consumer = 'race' AND topic = 'processed-output' AND partition = 0 AND next_offset = 100")
      await holder.query("INSERT INTO login_activity VALUES ('2026-12-04T10:00:00Z', 'processed', 'android', 'RU', '2.3.0', 50)")
      const stale = writeActivityBatch(db, 'race', [row({ logins: 100 })], [advance(0, 100n, 200n)]).catch((e: unknown) => e)
      await waitUntil(async () => {
        const { rows } = await holder.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return rows[0]!.n > 0 || undefined
      }, 'the second writer to wait for the row lock', 20_000)
      await holder.query('COMMIT')
      expect(await stale).toBeInstanceOf(StaleOffsetsError)
      expect(await offsets(db, 'race')).toEqual({ 'processed-output/0': '150' })
      expect((await activity(db)).map((r) => r.logins)).toEqual(['50'])
    } finally {
      await holder.end()
      await db.close()
    }
  })

  it('writers racing over the same partitions: the stored offset and the counts grow by exactly the batches that won', async () => {
    const dbs = Array.from({ length: 4 }, () => openPostgres(database.url, 1))
    try {
      await ensureLoginActivityTables(dbs[0]!)
      await dbs[0]!.query('DELETE FROM login_activity')
      let won = 0
      let lost = 0
      const partitions = [0, 1, 2].map((partition) => ({ topic: 'processed-output', partition }))
      await Promise.all(dbs.map(async (db) => {
        for (let i = 0; i < 25; i++) {
          const stored = await readStoredOffsets(db, 'racers', partitions)
          const moves = partitions.map((p) => {
            const from = stored.get(partitionKey(p)) ?? null
            return { ...p, expected: from, next: (from ?? 0n) + 10n }
          })
          try {
            await writeActivityBatch(db, 'racers', [row({ logins: 30 }), row({ locale: 'US', logins: 1 })], moves)
            won++
          } catch (error) {
            if (!(error instanceof StaleOffsetsError)) throw error
            lost++
          }
        }
      }))
      expect(won + lost).toBe(100)
      expect(won).toBeGreaterThan(0)
      expect(await offsets(dbs[0]!, 'racers')).toEqual({ 'processed-output/0': String(won * 10), 'processed-output/1': String(won * 10), 'processed-output/2': String(won * 10) })
      expect((await activity(dbs[0]!)).map((r) => [r.locale, r.logins])).toEqual([['RU', String(won * 30)], ['US', String(won)]])
    } finally {
      await Promise.all(dbs.map((db) => db.close()))
    }
  })
})
