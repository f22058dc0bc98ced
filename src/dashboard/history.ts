import type { Database } from '../shell/postgres/database.ts'
import { RANGES, toSample, type RangeName, type Sample } from './core/samples.ts'

/**
 * Reads host metrics history from the `performance` table the sink writes. Values arrive as
 * float8 (JS numbers) rather than numeric (strings): counters stay far below 2^53.
 * Until the sink has created the table there is simply no history.
 */
const UNDEFINED_TABLE = '42P01'

function isMissingTable(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === UNDEFINED_TABLE
}

async function orEmpty<T>(query: Promise<T[]>): Promise<T[]> {
  try {
    return await query
  } catch (error) {
    if (isMissingTable(error)) return []
    throw error
  }
}

export interface HostSeen {
  host: string
  last_sample: number
}

/** Hosts with samples in the last 24 hours, most recently seen first. */
export async function recentHosts(db: Pick<Database, 'query'>, now = Date.now()): Promise<HostSeen[]> {
  const rows = await orEmpty(
    db.query<{ host: string; last_sample: Date | string }>(
      'SELECT host, max(time) AS last_sample FROM performance WHERE time >= $1 GROUP BY host ORDER BY max(time) DESC, host LIMIT 500',
      [new Date(now - RANGES['24h'].ms)],
    ).then((r) => r.rows),
  )
  return rows.map((r) => ({ host: r.host, last_sample: new Date(r.last_sample).getTime() }))
}

/**
 * Ranges read as aggregates of this many seconds instead of every row: 24 h at 500 ms is
 * 172,800 rows, which took over a second to fetch; 10 s aggregates are 8,640. Each aggregate
 * stands for one sample: its time is the last row's, its counters the highest (the last, as
 * counters only grow; after a reset inside an aggregate the next one shows the drop, and no
 * rate is claimed there), its gauges the mean.
 */
const AGGREGATE_S: Partial<Record<RangeName, number>> = { '24h': 10 }

/** One host's samples of a range, oldest first. */
export async function loadSamples(db: Pick<Database, 'query'>, host: string, range: RangeName, now = Date.now()): Promise<Sample[]> {
  const params: unknown[] = [host, new Date(now - RANGES[range].ms), new Date(now)]
  const aggregateS = AGGREGATE_S[range]
  const sql =
    aggregateS === undefined
      ? `SELECT host, time, cpu_usage::float8 AS cpu_usage, memory_usage::float8 AS memory_usage, disk_usage::float8 AS disk_usage,
                cpu_interrupts::float8 AS cpu_interrupts, bytes_sent::float8 AS bytes_sent, bytes_received::float8 AS bytes_received,
                memory_used::float8 AS memory_used, memory_free::float8 AS memory_free
           FROM performance WHERE host = $1 AND time >= $2 AND time <= $3 ORDER BY time`
      : `SELECT $1::text AS host, max(time) AS time,
                avg(cpu_usage)::float8 AS cpu_usage, avg(memory_usage)::float8 AS memory_usage, avg(disk_usage)::float8 AS disk_usage,
                max(cpu_interrupts)::float8 AS cpu_interrupts, max(bytes_sent)::float8 AS bytes_sent, max(bytes_received)::float8 AS bytes_received,
                avg(memory_used)::float8 AS memory_used, avg(memory_free)::float8 AS memory_free
           FROM performance WHERE host = $1 AND time >= $2 AND time <= $3
          GROUP BY floor(extract(epoch FROM time) / $4) ORDER BY max(time)`
  if (aggregateS !== undefined) params.push(aggregateS)
  const rows = await orEmpty(db.query(sql, params).then((r) => r.rows))
  return rows.flatMap((row) => toSample(row) ?? [])
}

export async function databaseReachable(db: Pick<Database, 'query'>): Promise<void> {
  await db.query('SELECT 1')
}
