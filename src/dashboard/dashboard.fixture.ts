import { randomUUID } from 'node:crypto'
import { Admin } from '@platformatic/kafka'
import { inject } from 'vitest'
import { createLogger } from '../shell/log.ts'
import { loadSettings, type Settings } from '../shell/settings.ts'
import { clientOptions, kafkaConnection } from '../shell/kafka/connection.ts'
import { createProducer, type KpipeProducer } from '../shell/kafka/producer.ts'
import { ensureTopics } from '../shell/kafka/topics.ts'
import { openPostgres, type Database } from '../shell/postgres/database.ts'
import { ensurePerformanceTable } from '../host-metrics/sink/performance-table.ts'

/** Test helpers of the dashboard: its settings on the run's real broker and PostgreSQL, with topics of its own. */

export const unique = (name: string) => `${name}-${randomUUID().slice(0, 8)}`

export const silentLog = createLogger('silent')

export function testSettings(overrides: Record<string, string> = {}): Settings {
  const id = randomUUID().slice(0, 8)
  return loadSettings({
    KAFKA_BROKERS: inject('kafkaBrokers'),
    DATABASE_URL: inject('postgresUrl'),
    PORT: '0',
    LOG_LEVEL: 'silent',
    TOPIC_PERFORMANCE: `dash-performance-${id}`,
    TOPIC_SUMMARY: `dash-summary-${id}`,
    TOPIC_METRICS: `dash-metrics-${id}`,
    TOPIC_ERRORS: `dash-errors-${id}`,
    // every topic the dashboard reads is the test's own: other test files create and fill the
    // default ones (cleaned-data, user-login, …) while this one runs
    TOPIC_CLEANED: `dash-cleaned-${id}`,
    TOPIC_LOGINS: `dash-logins-${id}`,
    TOPIC_PROCESSED: `dash-processed-${id}`,
    TOPIC_PERFORMANCE_ERRORS: `dash-performance-errors-${id}`,
    ...overrides,
  })
}

export async function createFeedTopics(settings: Settings, partitions = 1): Promise<void> {
  await ensureTopics(
    kafkaConnection(settings),
    [settings.TOPIC_PERFORMANCE, settings.TOPIC_SUMMARY, settings.TOPIC_METRICS, settings.TOPIC_ERRORS].map((name) => ({ name, partitions, replicationFactor: 1 })),
  )
}

export async function openTestDatabase(): Promise<Database> {
  const db = openPostgres(inject('postgresUrl'), 2)
  // the sink's own schema, created the sink's way: other test files create it at the same time
  await ensurePerformanceTable(db)
  return db
}

/** Commits `offset` for `groupId` on partition 0 of `topic`: a consumer group with a lag, for the Kafka panel. */
export async function commitGroupOffset(settings: Settings, groupId: string, topic: string, offset: bigint): Promise<void> {
  const admin = new Admin(clientOptions(kafkaConnection(settings), 'dashboard-test-admin'))
  try {
    await admin.alterConsumerGroupOffsets({ groupId, topics: [{ name: topic, partitionOffsets: [{ partition: 0, offset }] }] })
  } finally {
    await admin.close()
  }
}

export function testProducer(settings: Settings): KpipeProducer {
  return createProducer(kafkaConnection(settings, 'dashboard-test'))
}

export interface Row {
  host: string
  time: Date
  cpu_usage: number
  memory_usage: number
  disk_usage: number
  cpu_interrupts: number
  bytes_sent: number
  bytes_received: number
}

/** Inserts rows as the sink would; parameters only. */
export async function insertRows(db: Database, rows: Row[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500)
    const params: unknown[] = []
    const values = chunk.map((r) => {
      const at = params.length
      params.push(r.host, r.time, r.cpu_usage, r.memory_usage, r.disk_usage, r.cpu_interrupts, r.bytes_sent, r.bytes_received, 8e9, 2e9)
      return `(${Array.from({ length: 10 }, (_, k) => `$${at + k + 1}`).join(', ')})`
    })
    await db.query(
      `INSERT INTO performance (host, time, cpu_usage, memory_usage, disk_usage, cpu_interrupts, bytes_sent, bytes_received, memory_used, memory_free) VALUES ${values.join(', ')} ON CONFLICT DO NOTHING`,
      params,
    )
  }
}

/** The JSON value the collector produces to the `performance` topic. */
export function sampleValue(host: string, time: number, over: Record<string, unknown> = {}): string {
  return JSON.stringify({
    host, time: new Date(time).toISOString(), cpu_usage: 33.3, memory_usage: 44.4, cpu_interrupts: Math.floor(time / 10), cpu_calls: null,
    memory_used: 8e9, memory_free: 2e9, bytes_sent: Math.floor(time * 2), bytes_received: Math.floor(time * 3), disk_usage: 55.5, ...over,
  })
}

export const counts = (n: number, extra: Record<string, unknown> = {}) => ({
  received: 10 * n,
  processed: 7 * n,
  filtered: { stale: n, app_version: n },
  errors: { invalid_json: n, missing_fields: 0, invalid_field: 0 },
  device_types: { android: 4 * n, ios: 3 * n },
  locales: { RU: 2 * n, US: 5 * n },
  app_versions: { '2.3.0': 9 * n },
  ...extra,
})

/** The project's one polling helper, re-exported for the dashboard's tests. */
export { waitFor } from '../../test/support/cli.ts'
