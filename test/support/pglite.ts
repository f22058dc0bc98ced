import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openPglite, type Database } from '../../src/shell/postgres/database.ts'

/** `work` on an embedded PGlite in a temporary directory of its own, closed and removed after. */
export async function withPglite(work: (db: Database) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kpipe-pglite-'))
  try {
    const db = await openPglite(join(dir, 'pg'))
    try {
      await work(db)
    } finally {
      await db.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
