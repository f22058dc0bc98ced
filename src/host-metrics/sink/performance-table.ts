import type { Database } from '../../shell/postgres/database.ts'
import { createTablesIdempotently } from '../../shell/postgres/create-tables.ts'
import { SAMPLE_COLUMNS } from '../sample.ts'
import type { SampleRow } from './decode.ts'

/**
 * The `performance` table of SPEC.md, created idempotently. The BRIN index on time keeps the
 * retention delete and time-range reads cheap at almost no cost per insert (rows arrive in
 * time order, which is what BRIN is made for).
 */
export const PERFORMANCE_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS performance (
  host text NOT NULL, time timestamptz NOT NULL,
  cpu_usage numeric(5,2), memory_usage numeric(5,2),
  cpu_interrupts numeric(18,0), cpu_calls numeric(18,0),
  memory_used numeric(18,0), memory_free numeric(18,0),
  bytes_sent numeric(18,0), bytes_received numeric(18,0),
  disk_usage numeric(5,2),
  PRIMARY KEY (host, time))`,
  'CREATE INDEX IF NOT EXISTS performance_time_brin ON performance USING brin (time)',
]

/** Creates the table and its index; two sinks (or a sink and a test) starting at once both succeed. */
export async function ensurePerformanceTable(db: Pick<Database, 'transaction'>): Promise<void> {
  await createTablesIdempotently(db, PERFORMANCE_SCHEMA)
}

const COLUMN_TYPES = SAMPLE_COLUMNS.map(() => 'numeric[]')

/**
 * One statement per batch of rows (the sink's slice), whatever its size: every column travels as
 * one array parameter and `unnest` turns them back into rows, so a batch is one round trip and one
 * plan (a multi-row VALUES list would need 11 parameters per row and hit the 65,535-parameter limit).
 */
export const INSERT_ROWS = `INSERT INTO performance (host, time, ${SAMPLE_COLUMNS.join(', ')})
SELECT * FROM unnest($1::text[], $2::timestamptz[], ${COLUMN_TYPES.map((t, i) => `$${i + 3}::${t}`).join(', ')})
ON CONFLICT (host, time) DO NOTHING`

const COPY_COLUMNS = ['host', 'time', ...SAMPLE_COLUMNS]

/**
 * Writes the rows; returns how many were new (replays hit ON CONFLICT DO NOTHING). First as one
 * `COPY` straight into the table, which costs the server half the CPU of the INSERT (3.5 against
 * 7.5 µs a row, docs/benchmarks.md); a batch that holds a row the table already has (a replay)
 * or that the database refuses fails as a whole, and is then written by the INSERT below, with
 * ON CONFLICT DO NOTHING, whose errors the caller sees as before.
 */
export async function insertRows(db: Pick<Database, 'query'> & Partial<Pick<Database, 'copyRows'>>, rows: SampleRow[]): Promise<number> {
  if (rows.length === 0) return 0
  if (db.copyRows !== undefined) {
    const text = copyText(rows)
    if (text !== undefined) {
      try {
        return await db.copyRows('performance', COPY_COLUMNS, text)
      } catch (error) {
        if (!isDataError(error)) throw error
      }
    }
  }
  return insertRowsOnConflict(db, rows)
}

/** SQLSTATE classes 22 (data exception) and 23 (integrity, e.g. a row the table already has). */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^2[23]/.test(code)
}

/**
 * The rows in COPY's text format. Values are already checked (times ISO-8601, numbers digits);
 * host names are escaped. A NUL cannot be written in this format: undefined, the INSERT decides.
 */
function copyText(rows: SampleRow[]): string | undefined {
  let text = ''
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!
    const host = copyField(row.host)
    if (host === undefined) return undefined
    text += `${host}\t${row.time}`
    for (let c = 0; c < SAMPLE_COLUMNS.length; c++) text += `\t${row.values[SAMPLE_COLUMNS[c]!] ?? '\\N'}`
    text += '\n'
  }
  return text
}

// eslint-disable-next-line no-control-regex
const COPY_SPECIAL = /[\\\t\n\r\x00]/
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }

function copyField(text: string): string | undefined {
  if (!COPY_SPECIAL.test(text)) return text
  if (text.includes('\0')) return undefined
  return text.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!)
}

/** Inserts the rows in one statement, ON CONFLICT DO NOTHING; returns how many were new. */
export async function insertRowsOnConflict(db: Pick<Database, 'query'>, rows: SampleRow[]): Promise<number> {
  if (rows.length === 0) return 0
  const hosts = new Array<string>(rows.length)
  const times = new Array<string>(rows.length)
  const columns = SAMPLE_COLUMNS.map(() => new Array<string>(rows.length))
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!
    hosts[i] = quoteElement(row.host)
    times[i] = row.time
    for (let c = 0; c < SAMPLE_COLUMNS.length; c++) columns[c]![i] = row.values[SAMPLE_COLUMNS[c]!] ?? 'NULL'
  }
  // Array literals built here: the values are already checked (times ISO, numbers digits), so
  // only host names need quoting, and the driver's generic per-element escaping is skipped.
  const result = await db.query(INSERT_ROWS, [`{${hosts.join(',')}}`, `{${times.join(',')}}`, ...columns.map((c) => `{${c.join(',')}}`)])
  return result.rowCount
}

/** An element of a PostgreSQL array literal, always quoted: `"`, `\\` escaped. */
function quoteElement(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&')}"`
}

/** Deletes rows older than the retention; returns how many went. */
export async function deleteExpiredRows(db: Pick<Database, 'query'>, retentionMs: number, now = Date.now()): Promise<number> {
  const result = await db.query('DELETE FROM performance WHERE time < $1::timestamptz', [new Date(now - retentionMs).toISOString()])
  return result.rowCount
}
