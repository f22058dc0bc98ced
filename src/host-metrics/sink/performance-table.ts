import type { Database } from '../../shell/postgres/database.ts'
import { createSchema } from '../../shell/postgres/create-schema.ts'
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

/** Creates the table and its index; two sinks starting at once must both succeed. */
export async function ensurePerformanceTable(db: Database): Promise<void> {
  await createSchema(db, PERFORMANCE_SCHEMA)
}

const COLUMN_TYPES = SAMPLE_COLUMNS.map(() => 'numeric[]')

/**
 * One statement per batch, whatever its size: every column travels as one array parameter and
 * `unnest` turns them back into rows, so a batch is one round trip and one plan (a multi-row
 * VALUES list would need 11 parameters per row and hit the 65,535-parameter limit).
 */
export const INSERT_ROWS = `INSERT INTO performance (host, time, ${SAMPLE_COLUMNS.join(', ')})
SELECT * FROM unnest($1::text[], $2::timestamptz[], ${COLUMN_TYPES.map((t, i) => `$${i + 3}::${t}`).join(', ')})
ON CONFLICT (host, time) DO NOTHING`

/** Inserts the rows in one statement; returns how many were new (replays hit ON CONFLICT DO NOTHING). */
export async function insertRows(db: Pick<Database, 'query'>, rows: SampleRow[]): Promise<number> {
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
