import type { FastifyInstance } from 'fastify'
import type { Settings } from '../shell/settings.ts'
import type { KafkaConnection } from '../shell/kafka/connection.ts'
import { describe } from '../shell/kafka/connection-errors.ts'
import { readTopic } from '../shell/kafka/topic-reader.ts'
import { decodeParked, UNREADABLE } from '../logins/replay/parked-record.ts'
import { categoryNote } from '../logins/replay/replay-report.ts'
import type { ParkedRole } from '../logins/replay/replay-request.ts'

export interface BacklogCategory {
  category: string
  count: number
  oldest: string
  newest: string
  /** the command that replays this category */
  command: string
  note: string
}

export interface ReplayBacklog {
  updated_at: string
  topics: { topic: string; role: ParkedRole; records: number; categories: BacklogCategory[] }[]
}

/** How long one scan of the parking topics is served to every page before the next. */
const CACHE_MS = 15_000

/**
 * `/api/replay-backlog`: what is parked in processed-errors and cleaned-data, by error type and
 * filter reason (what retention still holds, replayed or not), with the replay command for each.
 * A Fastify plugin of its own; one scan of both topics serves every page for 15 s.
 */
export function replayBacklogRoutes(settings: Settings, connection: KafkaConnection) {
  return async function replayBacklog(app: FastifyInstance): Promise<void> {
    let cache: { at: number; value: Promise<ReplayBacklog> } | undefined
    app.get('/api/replay-backlog', async (_request, reply) => {
      if (!cache || Date.now() - cache.at > CACHE_MS) {
        const value = scanBacklog(settings, connection)
        cache = { at: Date.now(), value }
        value.catch(() => {
          cache = undefined
        })
      }
      try {
        return await cache.value
      } catch (error) {
        return reply.code(503).send({ error: `the parking topics could not be read: ${describe(error)}` })
      }
    })
  }
}

export async function scanBacklog(settings: Settings, connection: KafkaConnection): Promise<ReplayBacklog> {
  const topics: ReplayBacklog['topics'] = []
  for (const [role, topic, roleName] of [['errors', settings.TOPIC_ERRORS, 'processed-errors'], ['cleaned', settings.TOPIC_CLEANED, 'cleaned-data']] as const) {
    const byCategory = new Map<string, { count: number; oldest: number; newest: number }>()
    let records = 0
    try {
      await readTopic(connection, topic, { from: 'earliest' }, (record) => {
        records++
        const parked = decodeParked(role, record)
        if (parked.category === UNREADABLE) return
        const seen = byCategory.get(parked.category)
        if (!seen) byCategory.set(parked.category, { count: 1, oldest: parked.writtenMs, newest: parked.writtenMs })
        else {
          seen.count++
          seen.oldest = Math.min(seen.oldest, parked.writtenMs)
          seen.newest = Math.max(seen.newest, parked.writtenMs)
        }
      })
    } catch (error) {
      // a topic nobody created yet has nothing parked
      if (!/unknown topic|UNKNOWN_TOPIC/i.test(describe(error))) throw error
    }
    const from = topic === roleName ? roleName : topic
    const flag = role === 'errors' ? '--error-type' : '--reason'
    topics.push({
      topic, role, records,
      categories: [...byCategory].sort((a, b) => b[1].count - a[1].count).map(([category, c]) => ({
        category,
        count: c.count,
        oldest: new Date(c.oldest).toISOString(),
        newest: new Date(c.newest).toISOString(),
        command: `kpipe logins replay --from ${from} ${flag} ${category}`,
        note: categoryNote(role, category),
      })),
    })
  }
  return { updated_at: new Date().toISOString(), topics }
}
