import { randomUUID } from 'node:crypto'
import { Admin } from '@platformatic/kafka'
import { inject } from 'vitest'
import { loadSettings, type Settings } from '../shell/settings.ts'
import { clientOptions, kafkaConnection, type KafkaConnection } from '../shell/kafka/connection.ts'
import { createProducer } from '../shell/kafka/producer.ts'
import { ensureTopics } from '../shell/kafka/topics.ts'
import { readTopic } from '../shell/kafka/topic-reader.ts'
import type { ConsumedRecord, OutputRecord } from '../shell/kafka/records.ts'
import { createLogger } from '../shell/log.ts'
import type { LoginRules } from './core/login-event.ts'
import { runGenerator } from './generate/run-generator.ts'
import { groupCommittedOffsets } from '../../test/support/kafka.ts'

export const HASH_KEY = 'test-hash-key-0123456789'

/** The fixed "now" of the tests of the pure rules: 2023-09-12T00:46:00Z, nine seconds after SPEC's example event. */
export const NOW_S = 1_694_479_560
export const NOW = NOW_S * 1000

/** The default rules (events older than 60 s are stale, version 2.3.0 only) under HASH_KEY. */
export const LOGIN_RULES: LoginRules = { hashKey: HASH_KEY, maxMessageAgeSeconds: 60, allowedAppVersions: new Set(['2.3.0']) }

/** SPEC's example login event (2023-09-12T00:45:51Z), with `overrides` on top. */
export const loginEvent = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  user_id: '424cdd21-063a-43a7-b91b-7ca1a833afae',
  app_version: '2.3.0',
  device_type: 'android',
  ip: '199.172.111.135',
  locale: 'RU',
  device_id: '593-47-5928',
  timestamp: '1694479551',
  ...overrides,
})

/** Environment of one test: its own topics (unique names), the test broker, a hash key. */
export function loginEnv(extra: Record<string, string> = {}): Record<string, string> {
  const id = randomUUID().slice(0, 8)
  return {
    KAFKA_BROKERS: inject('kafkaBrokers'),
    KPIPE_HASH_KEY: HASH_KEY,
    TOPIC_LOGINS: `user-login-${id}`,
    TOPIC_PROCESSED: `processed-output-${id}`,
    TOPIC_ERRORS: `processed-errors-${id}`,
    TOPIC_CLEANED: `cleaned-data-${id}`,
    TOPIC_SUMMARY: `summary-output-${id}`,
    TOPIC_METRICS: `metrics-output-${id}`,
    LOG_LEVEL: 'silent',
    ...extra,
  }
}

export function settingsOf(env: Record<string, string>): Settings {
  return loadSettings(env)
}

export function connectionOf(settings: Settings): KafkaConnection {
  return kafkaConnection(settings, 'test')
}

export async function createLoginTopics(settings: Settings, partitions = 3): Promise<void> {
  const s = settings
  await ensureTopics(connectionOf(s), [s.TOPIC_LOGINS, s.TOPIC_PROCESSED, s.TOPIC_ERRORS, s.TOPIC_CLEANED, s.TOPIC_SUMMARY, s.TOPIC_METRICS]
    .map((name) => ({ name, partitions, replicationFactor: 1 })))
}

export async function produceRaw(settings: Settings, values: (string | Buffer | undefined)[], key?: (i: number) => string): Promise<void> {
  const producer = createProducer(connectionOf(settings))
  try {
    const messages: OutputRecord[] = values.map((value, i) => ({ topic: settings.TOPIC_LOGINS, key: key?.(i) ?? `k${i}`, ...(value === undefined ? {} : { value }) }))
    for (let i = 0; i < messages.length; i += 1000) await producer.send({ messages: messages.slice(i, i + 1000) })
  } finally {
    await producer.close()
  }
}

export async function readAll(settings: Settings, topic: string): Promise<ConsumedRecord[]> {
  const records: ConsumedRecord[] = []
  await readTopic(connectionOf(settings), topic, { from: 'earliest' }, (r) => {
    records.push(r)
  })
  return records
}

/** Sum over partitions of a topic's end offsets (uncommitted records and markers included). */
export async function endOffsetSum(settings: Settings, topics: string[]): Promise<number> {
  const admin = new Admin(clientOptions(connectionOf(settings)))
  try {
    const result = await admin.listOffsets({ topics: topics.map((name) => ({ name, partitions: [0, 1, 2].map((partitionIndex) => ({ partitionIndex, timestamp: -1n })) })) })
    let sum = 0
    for (const t of result) for (const p of t.partitions) sum += Number(p.offset)
    return sum
  } finally {
    await admin.close()
  }
}

export async function committedOffsets(settings: Settings, groupId: string, partitions = 3): Promise<bigint[]> {
  return groupCommittedOffsets(connectionOf(settings), groupId, settings.TOPIC_LOGINS, partitions)
}

export const header = (r: ConsumedRecord, name: string) => r.headers.get(name)?.toString('utf8')

/** What a plain read_committed reader sees of `topics`: how many records, and how many distinct inputs their lineage names. */
export async function committedOutputs(settings: Settings, topics: string[]): Promise<{ records: number; distinctInputs: number }> {
  const seen = new Set<string>()
  let records = 0
  for (const topic of topics) {
    for (const r of await readAll(settings, topic)) {
      records++
      seen.add(`${header(r, 'source-partition')}/${header(r, 'source-offset')}`)
    }
  }
  return { records, distinctInputs: seen.size }
}

/** Topics of the env created, and `count` generated events (20 % invalid or stale) in the input. */
export async function generateLogins(env: Record<string, string>, count: number): Promise<Settings> {
  const settings = settingsOf(env)
  await createLoginTopics(settings)
  await runGenerator({ settings, log: createLogger('silent'), rate: 0, count, invalidRatio: 0.2, seed: 7, signal: new AbortController().signal })
  return settings
}
