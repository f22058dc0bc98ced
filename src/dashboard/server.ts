import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ServerResponse } from 'node:http'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { Admin } from '@platformatic/kafka'
import type { Component } from '../shell/stage.ts'
import type { Settings } from '../shell/settings.ts'
import type { Logger } from '../shell/log.ts'
import { DatabaseInUseError, openDatabase, type Database } from '../shell/postgres/database.ts'
import { clientOptions, kafkaConnection } from '../shell/kafka/connection.ts'
import { describe } from '../shell/kafka/connection-errors.ts'
import { registry } from '../shell/observability/prometheus.ts'
import { SetupError } from '../shell/errors.ts'
import { assertBindAllowed, presentedToken, TOKEN_COOKIE, tokenMatches } from './access.ts'
import { chartSeries, isRangeName, RANGES, toColumns, type RangeName, type Sample } from './core/samples.ts'
import { databaseReachable, loadSamples, recentHosts } from './history.ts'
import { brokerReachable, kafkaOverview, type KafkaOverview } from './kafka-overview.ts'
import { FEED_GROUP_PREFIX, LiveFeed } from './live-feed.ts'
import { replayBacklogRoutes } from './replay-backlog.ts'
import { loginActivityRoutes } from './login-activity-route.ts'

/** The page's files: from src/dashboard/public under vitest, dist/dashboard/public once built. */
const PUBLIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'public')
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot'))

interface Asset {
  body: Buffer
  type: string
}

function loadAssets(): Map<string, Asset> {
  const files: [string, string, string][] = [
    ['/', join(PUBLIC_DIR, 'index.html'), 'text/html; charset=utf-8'],
    ['/app.js', join(PUBLIC_DIR, 'app.js'), 'text/javascript; charset=utf-8'],
    ['/login-activity.js', join(PUBLIC_DIR, 'login-activity.js'), 'text/javascript; charset=utf-8'],
    ['/style.css', join(PUBLIC_DIR, 'style.css'), 'text/css; charset=utf-8'],
    ['/favicon.svg', join(PUBLIC_DIR, 'favicon.svg'), 'image/svg+xml'],
    ['/vendor/uPlot.iife.min.js', join(UPLOT_DIR, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8'],
    ['/vendor/uPlot.min.css', join(UPLOT_DIR, 'uPlot.min.css'), 'text/css; charset=utf-8'],
  ]
  try {
    return new Map(files.map(([path, file, type]) => [path, { body: readFileSync(file), type }]))
  } catch (error) {
    throw new SetupError(`the dashboard page is incomplete: ${(error as Error).message}`, 'run npm run build, which copies src/dashboard/public next to the compiled server')
  }
}

export interface DashboardDeps {
  settings: Settings
  log: Logger
  /** undefined: no history (the embedded database belongs to another process); the page runs on the live feed */
  db: Database | undefined
  /** why there is no history, shown on the page */
  historyUnavailable?: string
  admin: Admin
  feed: LiveFeed
}

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms).unref())])

/** The Fastify app: the page, its JSON API, the SSE stream, /metrics and the health checks. */
export function buildDashboard({ settings, log, db, historyUnavailable, admin, feed }: DashboardDeps): FastifyInstance {
  const app = Fastify({ logger: false, forceCloseConnections: true })
  const assets = loadAssets()
  const token = settings.KPIPE_DASHBOARD_TOKEN
  const streams = new Set<ServerResponse>()

  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 500
    if (status >= 500) log.error({ err: error, url: request.routeOptions.url }, `dashboard request failed: ${describe(error)}`)
    void reply.code(status).send({ error: status >= 500 ? describe(error) : error.message })
  })

  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer')
    if (!token) return
    const path = request.url.split('?')[0]
    if (path === '/healthz' || path === '/readyz') return
    const given = presentedToken(request.headers, request.query)
    if (!tokenMatches(token, given)) {
      return reply.code(401).header('www-authenticate', 'Bearer realm="kpipe"').send({ error: 'this dashboard requires a token: send Authorization: Bearer <token>, or open the page with ?token=<token>' })
    }
    // The page's own requests (and EventSource, which cannot set headers) then carry a cookie.
    if (path === '/' && (request.query as Record<string, unknown>).token) {
      void reply.header('set-cookie', `${TOKEN_COOKIE}=${encodeURIComponent(given!)}; Path=/; HttpOnly; SameSite=Strict`)
    }
  })

  for (const [path, asset] of assets) {
    app.get(path, async (_request, reply) => {
      void reply.type(asset.type).header('cache-control', path === '/' ? 'no-cache' : 'public, max-age=300')
      if (path === '/') {
        void reply.header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
      }
      return reply.send(asset.body)
    })
  }

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    const check = (what: Promise<void>, name: string) =>
      withTimeout(what, 3000, name).then(
        () => ({ ok: true as const }),
        (error: unknown) => ({ ok: false as const, error: describe(error) }),
      )
    const [kafka, database] = await Promise.all([
      check(brokerReachable(admin), 'Kafka'),
      db ? check(databaseReachable(db), 'the database') : Promise.resolve({ ok: false as const, error: historyUnavailable ?? 'no database' }),
    ])
    const ready = kafka.ok && database.ok
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: { kafka, database } })
  })

  app.get('/metrics', async (_request, reply) => {
    void reply.type(registry.contentType)
    return registry.metrics()
  })

  app.get('/api/hosts', async () => ({ hosts: await hostList() }))

  async function hostList() {
    const seen = new Map<string, number>()
    for (const h of [...(db ? await recentHosts(db) : []), ...feed.hosts()]) seen.set(h.host, Math.max(seen.get(h.host) ?? 0, h.last_sample))
    return [...seen]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([host, last]) => ({ host, last_sample: new Date(last).toISOString() }))
  }

  app.get('/api/metrics', async (request: FastifyRequest<{ Querystring: { range?: string; host?: string } }>, reply: FastifyReply) => {
    const range = request.query.range ?? '5m'
    if (!isRangeName(range)) return reply.code(400).send({ error: `range must be one of ${Object.keys(RANGES).join(', ')}; got ${JSON.stringify(range)}` })
    let host = request.query.host
    if (host !== undefined && (host === '' || host.length > 255)) return reply.code(400).send({ error: 'host must be a host name of 1 to 255 characters' })
    host ??= (await hostList())[0]?.host
    if (host === undefined) return { host: null, range, ...emptySeries(range) }
    return { host, range, ...(await series(host, range)) }
  })

  function emptySeries(range: RangeName) {
    const now = Date.now()
    return {
      from: new Date(now - RANGES[range].ms).toISOString(),
      to: new Date(now).toISOString(),
      bucket_ms: RANGES[range].bucketMs,
      sources: { database: 0, live: 0 },
      history_unavailable: historyUnavailable ?? null,
      points: toColumns([]),
    }
  }

  /** History from PostgreSQL, continued by the samples the feed saw after the sink's last row. */
  async function series(host: string, range: RangeName) {
    const now = Date.now()
    const from = now - RANGES[range].ms
    const stored = db ? await loadSamples(db, host, range, now) : []
    const lastStored = stored.at(-1)?.time ?? -Infinity
    const live = feed.samples(host).filter((s: Sample) => s.time > lastStored && s.time >= from)
    const points = chartSeries([...stored, ...live], range)
    return {
      from: new Date(from).toISOString(),
      to: new Date(now).toISOString(),
      bucket_ms: RANGES[range].bucketMs,
      sources: { database: stored.length, live: live.length },
      history_unavailable: historyUnavailable ?? null,
      points: toColumns(points),
    }
  }

  void app.register(replayBacklogRoutes(settings, kafkaConnection(settings, 'dashboard')))
  void app.register(loginActivityRoutes, { db, historyUnavailable })
  app.get('/api/summary', async () => feed.stats.summary())
  app.get('/api/processing', async () => feed.stats.processing())
  app.get('/api/errors', async () => ({ errors: feed.stats.errors().map(errorView) }))

  let kafkaCache: { at: number; value: Promise<KafkaOverview> } | undefined
  app.get('/api/kafka', async (_request, reply) => {
    // Several open pages poll this; one Admin round every 2 s is enough for all of them.
    if (!kafkaCache || Date.now() - kafkaCache.at > 2000) {
      const value = withTimeout(kafkaOverview(admin, (id) => id.startsWith(FEED_GROUP_PREFIX)), 10_000, 'Kafka')
      kafkaCache = { at: Date.now(), value }
      value.catch(() => {})
    }
    try {
      return await kafkaCache.value
    } catch (error) {
      // the broker being away is a state the page shows, not a failure of the dashboard
      return reply.code(503).send({ error: `Kafka is not reachable at ${settings.KAFKA_BROKERS.join(', ')}: ${describe(error)}` })
    }
  })

  app.get('/api/status', async () => ({
    feed: { group_id: feed.groupId, topics: feed.topics, reading: feed.subscribed, records: feed.records, unreadable: feed.unreadable },
    database: db ? db.description : `none: ${historyUnavailable}`,
    brokers: settings.KAFKA_BROKERS,
  }))

  app.get('/api/events', (request, reply) => {
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
    res.write('retry: 2000\n\n')
    send('hello', { time: new Date().toISOString() })
    const onSample = (e: unknown) => send('sample', e)
    const onSummary = (e: unknown) => send('summary', e)
    const onProcessing = (e: unknown) => send('processing', e)
    const onError = (e: Parameters<typeof errorView>[0]) => send('login-error', errorView(e))
    feed.on('sample', onSample)
    feed.on('summary', onSummary)
    feed.on('processing', onProcessing)
    feed.on('login-error', onError)
    // A comment every 15 s keeps proxies from closing an idle stream.
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000)
    streams.add(res)
    const close = () => {
      clearInterval(keepAlive)
      feed.off('sample', onSample)
      feed.off('summary', onSummary)
      feed.off('processing', onProcessing)
      feed.off('login-error', onError)
      streams.delete(res)
    }
    request.raw.on('close', close)
    res.on('close', close)
  })

  app.addHook('preClose', async () => {
    for (const res of streams) res.end()
  })

  return app
}

function errorView(e: ReturnType<LiveFeed['stats']['errors']>[number]) {
  return { ...e, time: e.time === null ? null : new Date(e.time).toISOString() }
}

export interface RunningDashboard {
  url: string
  app: FastifyInstance
  feed: LiveFeed
  /** stops serving and reading; closes the database unless it was handed in or `keepDatabase` */
  close(options?: { keepDatabase?: boolean }): Promise<void>
}

export interface StartOptions {
  /**
   * A database already open in this process (`kpipe up` shares its embedded PGlite, which one
   * process can open only once); the dashboard then leaves closing it to its owner.
   */
  db?: Database
}

/** Opens the database and the Kafka clients, starts the feed and listens on HOST:PORT. */
export async function startDashboard(settings: Settings, log: Logger, options: StartOptions = {}): Promise<RunningDashboard> {
  assertBindAllowed(settings.HOST, settings.KPIPE_DASHBOARD_TOKEN)
  const connection = kafkaConnection(settings, 'dashboard')
  let db = options.db
  let historyUnavailable: string | undefined
  if (!db) {
    try {
      db = await openDatabase(settings)
    } catch (error) {
      // The sink of another process holds the embedded database: serve live data only, and say so.
      if (!(error instanceof DatabaseInUseError)) throw error
      historyUnavailable = `${error.message}; set DATABASE_URL to a PostgreSQL server, or run kpipe up, for the 1 h and 24 h history`
      log.warn(`no history: ${historyUnavailable}`)
    }
  }
  const ownsDatabase = options.db === undefined
  const admin = new Admin(clientOptions(connection, `${connection.clientId}-admin`))
  const feed = new LiveFeed({ settings, connection, admin, log })
  const app = buildDashboard({ settings, log, db, historyUnavailable, admin, feed })
  let closing: Promise<void> | undefined
  const closeAll = (closeOptions: { keepDatabase?: boolean } = {}) =>
    (closing ??= (async () => {
      await app.close().catch(() => {})
      await feed.stop().catch(() => {})
      await admin.close().catch(() => {})
      if (db && ownsDatabase && !closeOptions.keepDatabase) await db.close().catch(() => {})
    })())
  try {
    await app.listen({ host: settings.HOST, port: settings.PORT })
  } catch (error) {
    await closeAll()
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE') throw new SetupError(`port ${settings.PORT} on ${settings.HOST} is already in use`, 'stop what uses it, or choose another port with --port or PORT')
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new SetupError(`cannot listen on HOST=${settings.HOST}: no such address on this machine`)
    throw error
  }
  feed.start()
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : settings.PORT
  const shownHost = settings.HOST.includes(':') ? `[${settings.HOST}]` : settings.HOST
  return { url: `http://${shownHost}:${port}/`, app, feed, close: closeAll }
}

/** The dashboard with the lifecycle of every part (`kpipe up`): listening once started, closed when the signal aborts. */
export class DashboardComponent implements Component {
  readonly name = 'dashboard'
  readonly done: Promise<void>
  #running: RunningDashboard | undefined
  #settle!: { resolve: () => void; reject: (error: unknown) => void }

  constructor(
    readonly settings: Settings,
    readonly log: Logger,
    readonly options: StartOptions = {},
  ) {
    this.done = new Promise<void>((resolve, reject) => (this.#settle = { resolve, reject }))
    this.done.catch(() => {})
  }

  get url(): string | undefined {
    return this.#running?.url
  }

  async start(signal: AbortSignal): Promise<void> {
    const running = await startDashboard(this.settings, this.log, this.options).catch((error: unknown) => {
      this.#settle.reject(error)
      throw error
    })
    this.#running = running
    const stop = () => void running.close().then(() => this.#settle.resolve(), (error: unknown) => this.#settle.reject(error))
    if (signal.aborted) stop()
    else signal.addEventListener('abort', stop, { once: true })
  }

  async ready(): Promise<boolean> {
    return this.#running !== undefined
  }
}
