import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { loadSettings, type Settings } from '../../src/shell/settings.ts'
import { createLogger } from '../../src/shell/log.ts'
import { kafkaConnection } from '../../src/shell/kafka/connection.ts'
import { ConsumerLoop } from '../../src/shell/kafka/consumer-loop.ts'
import type { ConsumedRecord } from '../../src/shell/kafka/records.ts'
import { waitFor } from './cli.ts'

export const uniqueName = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`

/** waitFor with the description first, as this file's callers read best. */
export function waitUntil<T>(check: () => T | Promise<T>, what: string, timeoutMs = 30_000): Promise<NonNullable<T>> {
  return waitFor(check, timeoutMs, what)
}

/** A database of its own on the shared test server, so that test files never see each other's rows. */
export async function createTestDatabase(serverUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = uniqueName('kpipe_metrics').replace(/-/g, '_')
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: serverUrl })
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await client.end()
    },
  }
}

/** Settings for a test: its own topics, quiet logs. */
export function testSettings(brokers: string, extra: Record<string, string> = {}): Settings {
  return loadSettings({
    KAFKA_BROKERS: brokers,
    TOPIC_PERFORMANCE: uniqueName('performance'),
    TOPIC_PERFORMANCE_ERRORS: uniqueName('performance-errors'),
    LOG_LEVEL: 'silent',
    ...extra,
  })
}

export const quietLog = () => createLogger(process.env.TEST_LOG_LEVEL ?? 'silent')

/** Everything that arrives on `topic`, read by a consumer loop of its own. */
export function collectTopic(settings: Settings, topic: string): { records: ConsumedRecord[]; stop(): Promise<void> } {
  const records: ConsumedRecord[] = []
  const loop = new ConsumerLoop({
    connection: kafkaConnection(settings, 'test-reader'),
    groupId: uniqueName('test-reader'),
    topics: [topic],
    log: quietLog(),
    handler: (batch) => {
      records.push(...batch)
      return []
    },
  })
  const done = loop.run()
  return {
    records,
    async stop() {
      loop.stop()
      await done
    },
  }
}
