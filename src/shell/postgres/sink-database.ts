import type { Logger } from '../log.ts'
import type { Settings } from '../settings.ts'
import { openDatabase, type Database } from './database.ts'
import { runRetention } from './retention.ts'

/** How often a sink deletes expired rows by default: a tenth of the retention, between 1 and 10 minutes. */
export function retentionCheckMs(retentionMs: number): number {
  return Math.min(600_000, Math.max(60_000, Math.floor(retentionMs / 10)))
}

export interface SinkRetention {
  /** deletes the rows older than `retentionMs`; resolves with how many */
  deleteExpired: (db: Database, retentionMs: number) => Promise<number>
  /** the rows it deletes, for the log line ("row(s)", "login_activity row(s)") */
  what: string
  retentionMs: number
  /** how often it runs (default: retentionCheckMs) */
  everyMs?: number | undefined
  log: Logger
}

/**
 * The database of a sink stage, and the lifecycle both sinks give it: opened at start-up unless
 * one was handed in (one embedded PGlite shared under `kpipe up`), a retention loop while the
 * stage runs, `SELECT 1` as its readiness, and a close that stops the loop and closes the
 * database only when the sink opened it itself (a database handed in belongs to its owner).
 */
export class SinkDatabase {
  readonly #settings: Pick<Settings, 'DATABASE_URL' | 'KPIPE_DATA_DIR'>
  readonly #given: Database | undefined
  #db: Database | undefined
  readonly #retentionStop = new AbortController()
  #retention: Promise<void> | undefined

  constructor(settings: Pick<Settings, 'DATABASE_URL' | 'KPIPE_DATA_DIR'>, given?: Database) {
    this.#settings = settings
    this.#given = given
    this.#db = given
  }

  /** the database once opened (or the one handed in) */
  get current(): Database | undefined {
    return this.#db
  }

  async open(): Promise<Database> {
    this.#db ??= await openDatabase(this.#settings)
    return this.#db
  }

  /** Starts deleting expired rows on a timer until close(); returns the interval used. */
  startRetention(retention: SinkRetention): number {
    const db = this.#db
    if (!db) throw new Error('the sink database is not open')
    if (this.#retention) throw new Error('the retention loop runs already')
    const { deleteExpired, what, retentionMs, log } = retention
    const everyMs = retention.everyMs ?? retentionCheckMs(retentionMs)
    this.#retention = runRetention(() => deleteExpired(db, retentionMs), { what, retentionMs, everyMs, log, signal: this.#retentionStop.signal })
    return everyMs
  }

  /** whether the database answers */
  async ready(): Promise<boolean> {
    if (!this.#db) return false
    await this.#db.query('SELECT 1')
    return true
  }

  async close(): Promise<void> {
    this.#retentionStop.abort()
    await this.#retention
    if (this.#db !== this.#given) await this.#db?.close().catch(() => {})
  }
}
