import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { from as copyFromStdin } from 'pg-copy-streams'
import type { Settings } from '../settings.ts'
import { databaseSetupError } from './database-errors.ts'
import { SetupError } from '../errors.ts'

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
  /**
   * `COPY table (columns) FROM` the given rows in PostgreSQL's text format (tab-separated, `\N`
   * for NULL, one row a line), as one statement: all rows or none. Returns how many were copied.
   */
  copyRows(table: string, columns: readonly string[], text: string): Promise<number>
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

/**
 * TLS comes from DATABASE_URL as pg parses it: `sslmode=verify-full&sslrootcert=/ca.pem`
 * (also `sslcert`/`sslkey` for client certificates). Refused TLS or logins throw a SetupError.
 */
export function openPostgres(url: string, poolSize = 4): Database {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 })
  // An idle client that loses its server must not crash the process; the next query reconnects.
  pool.on('error', () => {})
  const description = redactUrl(url)
  const explained = (error: unknown) => databaseSetupError(error, description) ?? error
  return {
    kind: 'postgres',
    description,
    async query(sql, params) {
      const result = await pool.query(sql, params).catch((error: unknown) => {
        throw explained(error)
      })
      return { rows: result.rows, rowCount: result.rowCount ?? 0 }
    },
    async copyRows(table, columns, text) {
      const client = await pool.connect().catch((error: unknown) => {
        throw explained(error)
      })
      let broken: unknown
      try {
        const copy = client.query(copyFromStdin(`COPY ${table} (${columns.join(', ')}) FROM STDIN`))
        await new Promise<void>((resolve, reject) => {
          copy.on('finish', resolve)
          copy.on('error', reject)
          copy.end(text)
        })
        return copy.rowCount
      } catch (error) {
        // a refused COPY leaves the connection usable; a lost one must not go back to the pool
        if (!(typeof (error as { code?: unknown }).code === 'string' && /^[0-9A-Z]{5}$/.test((error as { code: string }).code))) broken = error
        throw explained(error)
      } finally {
        client.release(broken as Error | undefined)
      }
    },
    async transaction(work) {
      const client = await pool.connect().catch((error: unknown) => {
        throw explained(error)
      })
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

/**
 * PGlite is PostgreSQL in one process: a second instance on the same directory (another
 * process, or the same one) reads stale pages and can corrupt the data. A lock file next to
 * the directory, holding the owner's pid, makes that a clear error instead.
 */
export class DatabaseInUseError extends SetupError {
  override name = 'DatabaseInUseError'
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      `the embedded database at ${dir} is in use by process ${pid}: PGlite serves one process`,
      `run the parts together with kpipe up (they share it), or set DATABASE_URL to a PostgreSQL server to run them as separate processes; if process ${pid} is not kpipe, delete ${dir}.lock`,
    )
  }
}

/**
 * PGlite could not start on the files of its directory: not a database this PGlite can open
 * (a first start that was interrupted, another PostgreSQL version's files, a disk that filled).
 * PGlite itself only says "PGlite failed to initialize properly".
 */
export class EmbeddedDatabaseError extends SetupError {
  override name = 'EmbeddedDatabaseError'
  constructor(
    readonly dir: string,
    cause: unknown,
  ) {
    super(
      `the embedded database at ${dir} could not be started (${cause instanceof Error ? cause.message : String(cause)})`,
      `if ${dir} holds nothing you need, move it away and kpipe makes a new one there; its PG_VERSION names the PostgreSQL that wrote it. Or set DATABASE_URL to a PostgreSQL server`,
    )
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Takes the directory's lock or throws DatabaseInUseError; returns its release. A dead owner's lock is taken over. */
export function lockPgliteDir(dir: string): () => void {
  const lockFile = `${dir}.lock`
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: 'wx' })
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw error
      let holder: number
      try {
        holder = Number(readFileSync(lockFile, 'utf8').trim())
      } catch {
        continue // released meanwhile
      }
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) throw new DatabaseInUseError(dir, holder)
      try {
        unlinkSync(lockFile)
      } catch {
        // another process took over the stale lock first; the next attempt says so
      }
    }
  }
  const release = () => {
    process.off('exit', release)
    try {
      if (readFileSync(lockFile, 'utf8').trim() === String(process.pid)) unlinkSync(lockFile)
    } catch {
      // already gone
    }
  }
  process.on('exit', release)
  return release
}

/**
 * PGlite's PostgreSQL keeps its shared buffers in the WebAssembly memory, and the process keeps
 * every page of it once touched: 128 MB by default (postgresql.conf of the template), a third of
 * the sink's peak. At 32 MB the sink peaked ~100 MB lower for the same CPU per row
 * (docs/benchmarks.md, "Memory (peak RSS), December 2026"); pages beyond it are read again
 * from the files, i.e. from the operating system's page cache.
 */
export const PGLITE_SHARED_BUFFERS = '32MB'

export async function openPglite(dir: string): Promise<Database> {
  mkdirSync(dir, { recursive: true })
  const release = lockPgliteDir(dir)
  const { PGlite } = await import('@electric-sql/pglite')
  let db: InstanceType<typeof PGlite>
  try {
    await initialisePgliteDir(dir)
    db = await PGlite.create(dir, { startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${PGLITE_SHARED_BUFFERS}`] }).catch((error: unknown) => {
      throw new EmbeddedDatabaseError(dir, error)
    })
  } catch (error) {
    release()
    throw error
  }
  const query = async <Row>(sql: string, params?: unknown[]) => {
    const r = await db.query<Row>(sql, params)
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length }
  }
  return {
    kind: 'pglite',
    description: `PGlite at ${dir}`,
    query: query as Database['query'],
    async copyRows(table, columns, text) {
      // PGlite has no COPY FROM STDIN stream; it reads the data of COPY … FROM '/dev/blob' from a Blob
      const r = await db.query(`COPY ${table} (${columns.join(', ')}) FROM '/dev/blob'`, [], { blob: new Blob([text]) })
      return r.affectedRows ?? 0
    },
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
      try {
        await db.close()
      } finally {
        release()
      }
    },
  }
}

/**
 * A fresh directory is a copy of a template initialised once per PGlite version (under the
 * user's cache directory), so initdb, which takes seconds (close to a minute on a loaded
 * machine), runs once per machine, not at every start on a new directory. Where no template can
 * be kept, the directory is initialised itself.
 */
async function initialisePgliteDir(dir: string): Promise<void> {
  if (existsSync(join(dir, 'PG_VERSION'))) return
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite')
  let template: string
  try {
    template = await pgliteTemplate(entry)
  } catch {
    await initdbInChild(entry, dir)
    return
  }
  cpSync(template, dir, { recursive: true })
}

/** Makes the template of this PGlite version when missing (e.g. ahead of runs that open many fresh directories); resolves to its path. */
export async function preparePgliteTemplate(): Promise<string> {
  return pgliteTemplate(createRequire(import.meta.url).resolve('@electric-sql/pglite'))
}

/** The initialised template of this PGlite version; made when missing (initialised beside it, then renamed into place). */
async function pgliteTemplate(entry: string): Promise<string> {
  const { version } = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache')
  const template = join(cache, 'kpipe', `pglite-${version}`)
  if (existsSync(join(template, 'PG_VERSION'))) return template
  const building = `${template}.${process.pid}.${Date.now()}`
  mkdirSync(building, { recursive: true })
  try {
    await initdbInChild(entry, building)
    try {
      renameSync(building, template)
    } catch (error) {
      // another process put its template in place first: it is as good as this one
      if (!existsSync(join(template, 'PG_VERSION'))) throw error
    }
  } finally {
    rmSync(building, { recursive: true, force: true })
  }
  return template
}

/**
 * Initialises a directory in a short-lived child process. PGlite runs initdb in a second
 * instance of itself beside the first, and the process keeps that memory: opening a fresh
 * directory peaked at ~870 MB and stayed at ~770 MB, opening an initialised one at ~300 MB.
 */
async function initdbInChild(entry: string, dir: string): Promise<void> {
  const script = `require(${JSON.stringify(entry)}).PGlite.create(process.argv[1]).then((db) => db.close())`
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, ['-e', script, dir], { timeout: 120_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`initialising the embedded database at ${dir} failed: ${stderr.trim() || error.message}`))
      else resolve()
    })
  })
}
