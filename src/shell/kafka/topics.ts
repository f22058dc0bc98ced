import { Admin, ProtocolError } from '@platformatic/kafka'
import type { Settings } from '../settings.ts'
import { clientOptions, type KafkaConnection } from './connection.ts'
import { errorChain } from './connection-errors.ts'

export interface TopicSpec {
  name: string
  partitions: number
  replicationFactor: number
  configs?: Record<string, string>
}

/** Every topic of kpipe, by role, with the names the settings give them. */
export function pipelineTopics(settings: Settings): string[] {
  return [
    settings.TOPIC_LOGINS,
    settings.TOPIC_PROCESSED,
    settings.TOPIC_ERRORS,
    settings.TOPIC_CLEANED,
    settings.TOPIC_SUMMARY,
    settings.TOPIC_METRICS,
    settings.TOPIC_PERFORMANCE,
    settings.TOPIC_PERFORMANCE_ERRORS,
  ]
}

export interface EnsureTopicsResult {
  created: string[]
  existing: string[]
}

/**
 * Creates the topics that do not exist yet; existing ones are left as they are (a topic's
 * partition count is never shrunk, and growing it would move keys between partitions, so that
 * stays an explicit operator decision). Safe to call any number of times, also concurrently.
 */
export async function ensureTopics(connection: KafkaConnection, specs: TopicSpec[]): Promise<EnsureTopicsResult> {
  const admin = new Admin(clientOptions(connection, `${connection.clientId}-admin`))
  try {
    const existing = new Set(await admin.listTopics())
    const result: EnsureTopicsResult = { created: [], existing: [] }
    for (const spec of specs) {
      if (existing.has(spec.name)) {
        result.existing.push(spec.name)
        continue
      }
      try {
        await admin.createTopics({
          topics: [spec.name],
          partitions: spec.partitions,
          replicas: spec.replicationFactor,
          configs: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
        })
        result.created.push(spec.name)
      } catch (error) {
        if (!isTopicExists(error)) throw error
        result.existing.push(spec.name)
      }
    }
    await waitForTopics(admin, specs.map((s) => s.name))
    return result
  } finally {
    await admin.close()
  }
}

/** The client's typed answer of a broker that already has the topic (another process created it first). */
function isTopicExists(error: unknown): boolean {
  return errorChain(error).some((e) => e instanceof ProtocolError && e.apiId === 'TOPIC_ALREADY_EXISTS')
}

/** New topics take a moment to get leaders; wait so that the first produce does not fail. */
async function waitForTopics(admin: Admin, names: string[]): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      const metadata = await admin.metadata({ topics: names, forceUpdate: true })
      const ready = names.every((n) => {
        const t = metadata.topics.get(n)
        return t !== undefined && t.partitions.every((p) => p.leader >= 0)
      })
      if (ready) return
    } catch (error) {
      if (Date.now() > deadline) throw error
    }
    if (Date.now() > deadline) throw new Error(`topics not ready after 30 s: ${names.join(', ')}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
