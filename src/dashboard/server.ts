import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ServerResponse } from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import { Admin } from '@platformatic/kafka'
import type { Component } from '../shell/stage.ts'
import type { Settings } from '../shell/settings.ts'
import type { Logger } from '../shell/log.ts'
import { DatabaseInUseError, openDatabase, type Database } from '../shell/postgres/database.ts'
import { clientOptions, kafkaConnection } from '../shell/kafka/connection.ts'
import { describe } from '../shell/kafka/connection-errors.ts'
import { SetupError } from '../shell/errors.ts'
import { assertBindAllowed, presentedToken, TOKEN_COOKIE, tokenMatches } from './access.ts'
import { LiveFeed } from './live-feed.ts'
import { pageRoutes, type Asset } from './routes/page.ts'
import { healthRoutes } from './routes/health.ts'
import { hostMetricsRoutes } from './routes/host-metrics.ts'
import { loginRoutes } from './routes/logins.ts'
import { kafkaRoutes } from './routes/kafka.ts'
import { eventRoutes } from './routes/events.ts'
import { replayBacklogRoutes } from './replay-backlog.ts'
import { loginActivityRoutes } from './login-activity-route.ts'
import { heldBy } from '../shell/port-holder.ts'

/** The page's files: from src/dashboard/public under vitest, dist/dashboard/public once built. */
const PUBLIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'public')
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot'))

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

export const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms).unref())])

/**
 * The Fastify app: the access check and error handler at the root, then one plugin per group
 * of routes (routes/): the page, the health checks and /metrics, host metrics, the login
 * panel, Kafka, and the SSE stream.
 */
export function buildDashboard(dependencies: DashboardDeps): FastifyInstance {
  const { settings, log, feed } = dependencies
  const app = Fastify({ logger: false, forceCloseConnections: true })
  const assets = loadAssets()
  const token = settings.KPIPE_DASHBOARD_TOKEN
  const streams = new Set<ServerResponse>()

  app.setErrorHandler((error: Error & { statusCode?: number; validation?: ValidationIssue[] }, request, reply) => {
    const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 500
    if (status >= 500) log.error({ err: error, url: request.routeOptions.url }, `dashboard request failed: ${describe(error)}`)
    const message = error.validation ? validationMessage(error.validation, request.query) : status >= 500 ? describe(error) : error.message
    void reply.code(status).send({ error: message })
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

  // each group of routes a plugin of its own, with its route schemas (fastify validates the query)
  const deps = { ...dependencies, withTimeout }
  void app.register(pageRoutes, { assets })
  void app.register(healthRoutes, deps)
  void app.register(hostMetricsRoutes, deps)
  void app.register(loginRoutes, deps)
  void app.register(kafkaRoutes, deps)
  void app.register(eventRoutes, { feed, streams })
  void app.register(replayBacklogRoutes(settings, kafkaConnection(settings, 'dashboard')))
  void app.register(loginActivityRoutes, { db: dependencies.db, historyUnavailable: dependencies.historyUnavailable })

  app.addHook('preClose', async () => {
    for (const res of streams) res.end()
  })

  return app
}

interface ValidationIssue {
  instancePath: string
  message?: string
  params: { allowedValues?: unknown[]; missingProperty?: string }
}

/** A rejected query parameter in one line: its name, what it must be, what was given. */
function validationMessage(issues: ValidationIssue[], query: unknown): string {
  const issue = issues[0]!
  const name = issue.instancePath.replace(/^\//, '') || issue.params.missingProperty || 'the query'
  const given = (query as Record<string, unknown> | undefined)?.[name]
  const expected = issue.params.allowedValues ? `one of ${issue.params.allowedValues.join(', ')}` : (issue.message ?? 'valid')
  return `${name} must be ${expected.replace(/^must (be )?/, '')}; got ${JSON.stringify(given)}`
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
    if (code === 'EADDRINUSE') throw new SetupError(`port ${settings.PORT} on ${settings.HOST} is already in use${heldBy(settings.PORT)}`, 'stop what uses it, or choose another port with --port or PORT')
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
