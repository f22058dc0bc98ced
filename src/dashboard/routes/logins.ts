import type { FastifyPluginAsync } from 'fastify'
import type { LoginError } from '../core/login-stats.ts'
import type { RouteDeps } from './route-deps.ts'

/** A login error as the page shows it: its time as ISO-8601. */
export function errorView(e: LoginError) {
  return { ...e, time: e.time === null ? null : new Date(e.time).toISOString() }
}

/** `/api/summary`, `/api/processing`, `/api/errors`: the login panel, from the live feed. */
export const loginRoutes: FastifyPluginAsync<RouteDeps> = async (app, { feed }) => {
  app.get('/api/summary', async () => feed.stats.summary())
  app.get('/api/processing', async () => feed.stats.processing())
  app.get('/api/errors', async () => ({ errors: feed.stats.errors().map(errorView) }))
}
