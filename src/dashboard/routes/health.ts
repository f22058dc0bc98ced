import type { FastifyPluginAsync } from 'fastify'
import { describe } from '../../shell/kafka/connection-errors.ts'
import { registry } from '../../shell/observability/prometheus.ts'
import { databaseReachable } from '../history.ts'
import { brokerReachable } from '../kafka-overview.ts'
import type { RouteDeps } from './route-deps.ts'

/** `/healthz`, `/readyz` (Kafka and the database answer) and `/metrics` (Prometheus). */
export const healthRoutes: FastifyPluginAsync<RouteDeps> = async (app, { admin, db, historyUnavailable, withTimeout }) => {
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
}
