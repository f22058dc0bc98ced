import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { openPglite } from './database.ts'

const root = mkdtempSync(join(tmpdir(), 'kpipe-pglite-template-'))
process.env.XDG_CACHE_HOME = join(root, 'cache')

afterAll(() => rmSync(root, { recursive: true, force: true }))

async function systemIdentifier(dir: string): Promise<string> {
  const db = await openPglite(dir)
  try {
    const { rows } = await db.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')
    await db.query('CREATE TABLE IF NOT EXISTS t (n int)')
    await db.query('INSERT INTO t VALUES (1)')
    return rows[0]!.id
  } finally {
    await db.close()
  }
}

describe('a fresh PGlite directory', () => {
  // one initdb (close to a minute on a loaded machine), then two opens
  it('is a copy of the template initialised once per PGlite version: initdb does not run again', async () => {
    const first = await systemIdentifier(join(root, 'a'))
    const templates = readdirSync(join(root, 'cache', 'kpipe'))
    expect(templates).toHaveLength(1)
    expect(templates[0]).toMatch(/^pglite-\d/)
    // every initdb draws a new system identifier: the same one means the second was copied
    expect(await systemIdentifier(join(root, 'b'))).toBe(first)
    // the copies are separate databases; the template is left as it was
    const db = await openPglite(join(root, 'b'))
    try {
      expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM t')).rows[0]!.n).toBe(1)
    } finally {
      await db.close()
    }
    expect(existsSync(join(root, 'cache', 'kpipe', templates[0]!, 'base'))).toBe(true)
  }, 180_000)
})
