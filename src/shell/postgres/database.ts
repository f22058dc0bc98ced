import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import type { Settings } from '../settings.ts'

/**
 * The database kpipe writes to and reads from: a real PostgreSQL server when DATABASE_URL is
 * set, embedded PGlite (PostgreSQL compiled to WASM, data under KPIPE_DATA_DIR/pg) otherwise.
 * Both speak the same SQL; callers see one small interface.
 */
export interface Database {
  readonly kind: 'postgres' | 'pglite'
  /** where it lives, without credentials */
  readonly description: string
  query<Row extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: Row[]; rowCount: number }>
  /** runs `work` in one transaction: committed when it resolves, rolled back when it throws */
  transaction<T>(work: (tx: Pick<Database, 'query'>) => Promise<T>): Promise<T>
  close(): Promise<void>
}

export async function openDatabase(settings: Pick<Settings, 'DATABASE_URL' | 'KPIPE_DATA_DIR'>): Promise<Database> {
  return settings.DATABASE_URL ? openPostgres(settings.DATABASE_URL) : openPglite(join(settings.KPIPE_DATA_DIR, 'pg'))
}

/** The URL without its password, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '(unparseable DATABASE_URL)'
  }
}

export function openPostgres(url: string, poolSize = 4): Database {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 })
  // An idle client that loses its server must not crash the process; the next query reconnects.
  pool.on('error', () => {})
  return {
    kind: 'postgres',
    description: redactUrl(url),
    async query(sql, params) {
      const result = await pool.query(sql, params)
      return { rows: result.rows, rowCount: result.rowCount ?? 0 }
    },
    async transaction(work) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const result = await work({
          async query(sql, params) {
            const r = await client.query(sql, params)
            return { rows: r.rows, rowCount: r.rowCount ?? 0 }
          },
        })
        await client.query('COMMIT')
        return result
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {})
        throw error
      } finally {
        client.release()
      }
    },
    async close() {
      await pool.end()
    },
  }
}

export async function openPglite(dir: string): Promise<Database> {
  mkdirSync(dir, { recursive: true })
  const { PGlite } = await import('@electric-sql/pglite')
  const db = await PGlite.create(dir)
  const query = async <Row>(sql: string, params?: unknown[]) => {
    const r = await db.query<Row>(sql, params)
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length }
  }
  return {
    kind: 'pglite',
    description: `PGlite at ${dir}`,
    query: query as Database['query'],
    async transaction(work) {
      return db.transaction(async (tx) =>
        work({
          async query(sql, params) {
            const r = await tx.query(sql, params)
            return { rows: r.rows as never[], rowCount: r.affectedRows ?? r.rows.length }
          },
        }),
      )
    },
    async close() {
      await db.close()
    },
  }
}
