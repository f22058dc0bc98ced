import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Database } from '../shell/postgres/database.ts'

/** The ranges of the login activity charts, and the bucket each is drawn in (≤ 288 points per series). */
export const ACTIVITY_RANGES = {
  '1h': { ms: 3_600_000, bucketMs: 60_000 },
  '24h': { ms: 86_400_000, bucketMs: 300_000 },
  '7d': { ms: 7 * 86_400_000, bucketMs: 3_600_000 },
} as const
export type ActivityRangeName = keyof typeof ACTIVITY_RANGES

/** Values shown per dimension; the rest is summed as OTHER_VALUE. */
const TOP_VALUES = 10
/** Outcomes charted as series of their own; the rest is summed as OTHER_VALUE. */
const TOP_OUTCOMES = 8
export const OTHER_VALUE = '(other)'
export const NO_TABLE = 'no login_activity table yet: kpipe logins sink creates it'

export interface LoginActivityView {
  range: ActivityRangeName
  from: string
  to: string
  bucket_ms: number
  /** logins in the range, all outcomes */
  total: number
  /** bucket start times (epoch ms) and, per outcome, logins per minute averaged over each bucket (0 where none) */
  per_minute: { time: number[]; outcomes: Record<string, number[]> }
  /** logins per value over the whole range, largest first; '' is unknown */
  split: Record<'outcome' | 'device_type' | 'locale' | 'app_version', { value: string; logins: number }[]>
  history_unavailable: string | null
}

export interface LoginActivityRouteOptions {
  db: Database | undefined
  historyUnavailable?: string | undefined
}

/**
 * `GET /api/logins/activity?range=1h|24h|7d`: the login panel's charts from `login_activity`
 * (written by `kpipe logins sink`), as a Fastify plugin of its own.
 */
export async function loginActivityRoutes(app: FastifyInstance, options: LoginActivityRouteOptions): Promise<void> {
  app.get('/api/logins/activity', async (request: FastifyRequest<{ Querystring: { range?: string } }>, reply: FastifyReply) => {
    const range = request.query.range ?? '1h'
    if (!Object.hasOwn(ACTIVITY_RANGES, range)) return reply.code(400).send({ error: `range must be one of ${Object.keys(ACTIVITY_RANGES).join(', ')}; got ${JSON.stringify(range)}` })
    return loginActivity(options.db, range as ActivityRangeName, Date.now(), options.historyUnavailable)
  })
}

/** The view of one range, read in two statements: the series per bucket and outcome, and the splits. */
export async function loginActivity(db: Pick<Database, 'query'> | undefined, range: ActivityRangeName, now: number, historyUnavailable?: string): Promise<LoginActivityView> {
  const { ms, bucketMs } = ACTIVITY_RANGES[range]
  // whole buckets: the first starts at or before now - range, the last holds now
  const end = Math.floor(now / bucketMs) * bucketMs + bucketMs
  const start = end - Math.ceil(ms / bucketMs) * bucketMs
  const time = Array.from({ length: (end - start) / bucketMs }, (_, i) => start + i * bucketMs)
  const view: LoginActivityView = {
    range,
    from: new Date(start).toISOString(),
    to: new Date(end).toISOString(),
    bucket_ms: bucketMs,
    total: 0,
    per_minute: { time, outcomes: {} },
    split: { outcome: [], device_type: [], locale: [], app_version: [] },
    history_unavailable: db ? null : (historyUnavailable ?? 'no database'),
  }
  if (!db) return view
  const params = [new Date(start).toISOString(), new Date(end).toISOString()]
  const read = Promise.all([
    db.query<{ bucket: string; outcome: string; logins: string }>(
      `SELECT (floor(extract(epoch FROM minute) * 1000 / ${bucketMs}) * ${bucketMs})::text AS bucket, outcome, sum(logins)::text AS logins
       FROM login_activity WHERE minute >= $1::timestamptz AND minute < $2::timestamptz GROUP BY 1, 2`, params),
    db.query<{ dimension: string; value: string; logins: string }>(
      `SELECT 'outcome' AS dimension, outcome AS value, sum(logins)::text AS logins FROM login_activity WHERE minute >= $1::timestamptz AND minute < $2::timestamptz GROUP BY outcome
       UNION ALL SELECT 'device_type', device_type, sum(logins)::text FROM login_activity WHERE minute >= $1::timestamptz AND minute < $2::timestamptz GROUP BY device_type
       UNION ALL SELECT 'locale', locale, sum(logins)::text FROM login_activity WHERE minute >= $1::timestamptz AND minute < $2::timestamptz GROUP BY locale
       UNION ALL SELECT 'app_version', app_version, sum(logins)::text FROM login_activity WHERE minute >= $1::timestamptz AND minute < $2::timestamptz GROUP BY app_version`, params),
  ])
  let series: Awaited<typeof read>[0]
  let splits: Awaited<typeof read>[1]
  try {
    ;[series, splits] = await read
  } catch (error) {
    // no sink has run against this database yet: an empty chart that says so, not a failure
    if ((error as { code?: unknown }).code !== '42P01') throw error
    view.history_unavailable = NO_TABLE
    return view
  }
  for (const row of splits.rows) view.split[row.dimension as keyof LoginActivityView['split']].push({ value: row.value, logins: Number(row.logins) })
  for (const key of Object.keys(view.split) as (keyof LoginActivityView['split'])[]) {
    view.split[key] = topValues(view.split[key], key === 'outcome' ? Infinity : TOP_VALUES)
  }
  view.total = view.split.outcome.reduce((sum, o) => sum + o.logins, 0)

  const charted = new Set(topValues(view.split.outcome, TOP_OUTCOMES).map((o) => o.value))
  const minutesPerBucket = bucketMs / 60_000
  for (const row of series.rows) {
    const outcome = charted.has(row.outcome) ? row.outcome : OTHER_VALUE
    const column = (view.per_minute.outcomes[outcome] ??= new Array<number>(time.length).fill(0))
    const index = (Number(row.bucket) - start) / bucketMs
    if (index >= 0 && index < time.length) column[index]! += Number(row.logins) / minutesPerBucket
  }
  return view
}

/** Largest first (ties by value); beyond `limit`, one OTHER_VALUE entry with the rest. */
function topValues(entries: { value: string; logins: number }[], limit: number): { value: string; logins: number }[] {
  const sorted = [...entries].sort((a, b) => b.logins - a.logins || (a.value < b.value ? -1 : 1))
  if (sorted.length <= limit) return sorted
  const rest = sorted.slice(limit - 1).reduce((sum, e) => sum + e.logins, 0)
  return [...sorted.slice(0, limit - 1), { value: OTHER_VALUE, logins: rest }]
}
