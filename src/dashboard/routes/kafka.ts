import type { FastifyPluginAsync } from 'fastify'
import { describe } from '../../shell/kafka/connection-errors.ts'
import { kafkaOverview, type KafkaOverview } from '../kafka-overview.ts'
import { FEED_GROUP_PREFIX } from '../live-feed.ts'
import type { RouteDeps } from './route-deps.ts'

/** `/api/kafka` (topics, end offsets, groups and their lag) and `/api/status` (what the dashboard reads). */
export const kafkaRoutes: FastifyPluginAsync<RouteDeps> = async (app, { admin, settings, feed, db, historyUnavailable, withTimeout }) => {
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
}
