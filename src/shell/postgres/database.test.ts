import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, inject, it } from 'vitest'
import { EmbeddedDatabaseError, openPglite, openPostgres, PGLITE_SHARED_BUFFERS, redactUrl, type Database } from './database.ts'

async function roundTrip(db: Database, table: string) {
  await db.query(`CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY, name text NOT NULL, at timestamptz NOT NULL)`)
  await db.transaction(async (tx) => {
    await tx.query(`INSERT INTO ${table} (id, name, at) VALUES ($1, $2, $3), ($4, $5, $6)`, [1, 'one', '2026-01-01T00:00:00Z', 2, 'zwei ✓', '2026-01-01T00:00:01Z'])
  })
  // a failed transaction leaves nothing behind
  await expect(
    db.transaction(async (tx) => {
      await tx.query(`INSERT INTO ${table} (id, name, at) VALUES (3, 'three', now())`)
      await tx.query(`INSERT INTO ${table} (id, name, at) VALUES (1, 'duplicate', now())`)
    }),
  ).rejects.toThrow()
  const { rows } = await db.query<{ id: number; name: string }>(`SELECT id, name FROM ${table} ORDER BY id`)
  expect(rows).toEqual([{ id: 1, name: 'one' }, { id: 2, name: 'zwei ✓' }])
  const conflict = await db.query(`INSERT INTO ${table} (id, name, at) VALUES (1, 'again', now()) ON CONFLICT DO NOTHING`)
  expect(conflict.rowCount).toBe(0)
}

describe('database shell', () => {
  it('a real PostgreSQL server: create a table, write, read, roll back', async () => {
    const db = openPostgres(inject('postgresUrl'))
    try {
      expect(db.kind).toBe('postgres')
      await roundTrip(db, `shell_test_${process.pid}`)
    } finally {
      await db.close()
    }
  })

  it('embedded PGlite: the same SQL, and the data survives a reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kpipe-pglite-'))
    try {
      let db = await openPglite(dir)
      expect(db.kind).toBe('pglite')
      await roundTrip(db, 'shell_test')
      await db.close()
      db = await openPglite(dir)
      expect((await db.query('SELECT count(*)::int AS n FROM shell_test')).rows[0]).toEqual({ n: 2 })
      // the smaller buffer pool kpipe gives PGlite (its memory), not the template's 128 MB
      expect((await db.query('SHOW shared_buffers')).rows[0]).toEqual({ shared_buffers: PGLITE_SHARED_BUFFERS })
      await db.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('embedded PGlite on files it cannot start: an error that names the directory and what to do, and the directory is not left locked', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'kpipe-pglite-bad-'))
    const dir = join(parent, 'pg')
    try {
      // a directory that claims to be initialised and holds nothing else (e.g. a first start cut short)
      mkdirSync(dir)
      writeFileSync(join(dir, 'PG_VERSION'), '17\n')
      const error = await openPglite(dir).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(EmbeddedDatabaseError)
      expect((error as EmbeddedDatabaseError).message).toContain(`the embedded database at ${dir} could not be started`)
      expect((error as EmbeddedDatabaseError).hint).toContain('move it away')
      expect(existsSync(`${dir}.lock`)).toBe(false)
    } finally {
      rmSync(parent, { recursive: true, force: true })
    }
  })

  it('keeps passwords out of descriptions', () => {
    expect(redactUrl('postgres://kpipe:s3cret@db:5432/x?sslmode=require')).toBe('postgres://kpipe:***@db:5432/x?sslmode=require')
  })
})
