import type { FastifyPluginAsync } from 'fastify'
import { chartSeries, RANGES, toColumns, type RangeName, type Sample } from '../core/samples.ts'
import { loadSamples, recentHosts } from '../history.ts'
import type { RouteDeps } from './route-deps.ts'

const metricsQuery = {
  type: 'object',
  properties: {
    range: { type: 'string', enum: Object.keys(RANGES), default: '5m' },
    host: { type: 'string', minLength: 1, maxLength: 255 },
  },
} as const

/** `/api/hosts` and `/api/metrics`: history from PostgreSQL continued by the live samples. */
export const hostMetricsRoutes: FastifyPluginAsync<RouteDeps> = async (app, { db, feed, historyUnavailable }) => {
  async function hostList() {
    const seen = new Map<string, number>()
    for (const h of [...(db ? await recentHosts(db) : []), ...feed.hosts()]) seen.set(h.host, Math.max(seen.get(h.host) ?? 0, h.last_sample))
    return [...seen]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([host, last]) => ({ host, last_sample: new Date(last).toISOString() }))
  }

  app.get('/api/hosts', async () => ({ hosts: await hostList() }))

  app.get<{ Querystring: { range: RangeName; host?: string } }>('/api/metrics', { schema: { querystring: metricsQuery } }, async (request) => {
    const { range } = request.query
    const host = request.query.host ?? (await hostList())[0]?.host
    if (host === undefined) return { host: null, range, ...(await series(undefined, range)) }
    return { host, range, ...(await series(host, range)) }
  })

  /** History from PostgreSQL, continued by the samples the feed saw after the sink's last row. */
  async function series(host: string | undefined, range: RangeName) {
    const now = Date.now()
    const from = now - RANGES[range].ms
    const stored = db && host !== undefined ? await loadSamples(db, host, range, now) : []
    const lastStored = stored.at(-1)?.time ?? -Infinity
    const live = host === undefined ? [] : feed.samples(host).filter((s: Sample) => s.time > lastStored && s.time >= from)
    const points = host === undefined ? [] : chartSeries([...stored, ...live], range)
    return {
      from: new Date(from).toISOString(),
      to: new Date(now).toISOString(),
      bucket_ms: RANGES[range].bucketMs,
      sources: { database: stored.length, live: live.length },
      history_unavailable: historyUnavailable ?? null,
      points: toColumns(points),
    }
  }
}
