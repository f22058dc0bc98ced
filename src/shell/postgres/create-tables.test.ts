import { randomBytes } from 'node:crypto'
import { describe, expect, inject, it } from 'vitest'
import { createTablesIdempotently } from './create-tables.ts'
import { openPostgres } from './database.ts'
import { withPglite } from '../../../test/support/pglite.ts'

const schema = (table: string) => [
  `CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY, at timestamptz NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS ${table}_at ON ${table} (at)`,
]

describe('createTablesIdempotently', () => {
  it('many sessions creating the same tables at once all succeed (a bare IF NOT EXISTS collides on the catalog)', async () => {
    const sessions = 8
    const db = openPostgres(inject('postgresUrl'), sessions)
    const tables: string[] = []
    try {
      for (let round = 0; round < 6; round++) {
        const table = `ddl_race_${randomBytes(4).toString('hex')}`
        tables.push(table)
        const results = await Promise.allSettled(Array.from({ length: sessions }, () => createTablesIdempotently(db, schema(table))))
        expect(results.filter((r) => r.status === 'rejected')).toEqual([])
        await db.query(`INSERT INTO ${table} (id, at) VALUES (1, now())`)
        expect((await db.query(`SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = $1`, [table])).rows[0]).toEqual({ n: 2 })
      }
    } finally {
      for (const table of tables) await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {})
      await db.close()
    }
  })

  it('works on embedded PGlite too, and a second run changes nothing', async () => {
    await withPglite(async (db) => {
      await createTablesIdempotently(db, schema('pglite_ddl'))
      await db.query('INSERT INTO pglite_ddl (id, at) VALUES (1, now())')
      await createTablesIdempotently(db, schema('pglite_ddl'))
      expect((await db.query('SELECT count(*)::int AS n FROM pglite_ddl')).rows[0]).toEqual({ n: 1 })
    })
  })
})
