import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { openPostgres, type Database } from '../../shell/postgres/database.ts'
import { createProducer } from '../../shell/kafka/producer.ts'
import type { ConsumedRecord } from '../../shell/kafka/records.ts'
import { LoginGenerator } from '../generate/login-generator.ts'
import { LoginProcessor } from '../process/login-processor.ts'
import { connectionOf, createLoginTopics, loginEnv, settingsOf } from '../logins.fixture.ts'
import { createTestDatabase, waitUntil } from '../../../test/support/host-metrics.ts'
import { exitOf, spawnKpipe } from '../../../test/support/cli.ts'
import { activeMembers, storedOffsetSum, tallyTable, tallyTopics } from '../../../test/support/login-activity.ts'
import type { Settings } from '../../shell/settings.ts'

const CHUNK = 4000
const GROUP = 'kpipe-logins-sink-test'

/**
 * The processor's outputs for `count` generated events (a fifth invalid or stale, some of other
 * app versions), made by the processor's own handler and produced to the three output topics.
 */
async function produceOutputs(settings: Settings, generator: LoginGenerator, count: number): Promise<void> {
  const processor = new LoginProcessor(settings, 'sink-test')
  const now = Math.floor(Date.now() / 1000)
  const inputs = Array.from({ length: count }, (_, i) => {
    const login = generator.next(now)
    const value = typeof login.value === 'string' ? Buffer.from(login.value) : login.value
    return { topic: settings.TOPIC_LOGINS, partition: 0, offset: BigInt(i), value, key: undefined, timestamp: BigInt(Date.now()), headers: new Map() } as unknown as ConsumedRecord
  })
  const outputs = processor.handle(inputs)
  const producer = createProducer(connectionOf(settings))
  try {
    for (let i = 0; i < outputs.length; i += 1000) await producer.send({ messages: outputs.slice(i, i + 1000) })
  } finally {
    await producer.close()
  }
}

describe('kpipe logins sink on a real broker and PostgreSQL', () => {
  let database: { url: string; drop(): Promise<void> }
  let db: Database
  beforeAll(async () => {
    database = await createTestDatabase(inject('postgresUrl'))
    db = openPostgres(database.url, 1)
  })
  afterAll(async () => {
    await db.close()
    await database.drop()
  })

  it('SIGKILLed three times mid-stream, then two sinks sharing the group with one leaving: every count exact', { timeout: 240_000 }, async () => {
    const env = loginEnv({ DATABASE_URL: database.url })
    const settings = settingsOf(env)
    await createLoginTopics(settings, 3)
    const generator = new LoginGenerator(17, 0.2)
    const args = ['logins', 'sink', '--group', GROUP, '--batch-size', '200']
    let produced = 0

    for (let kill = 1; kill <= 3; kill++) {
      await produceOutputs(settings, generator, CHUNK)
      produced += CHUNK
      const before = await storedOffsetSum(db, GROUP)
      const sink = spawnKpipe(args, env)
      // killed only once it has committed something of this chunk, and before it is through
      await waitUntil(async () => (await storedOffsetSum(db, GROUP)) > before || sink.exitCode !== null, `sink ${kill} to commit a batch`, 45_000)
      sink.kill('SIGKILL')
      expect((await exitOf(sink)).signal, sink.output()).toBe('SIGKILL')
    }
    const partial = await tallyTable(db)
    expect(partial.total).toBeGreaterThan(0)

    // two sinks in one group share the partitions; one leaves while the last chunk is being counted
    const a = spawnKpipe(args, env)
    const b = spawnKpipe(args, env)
    try {
      await waitUntil(async () => (await activeMembers(settings, GROUP)) === 2, 'both sinks to share the partitions', 60_000)
      const before = await storedOffsetSum(db, GROUP)
      await produceOutputs(settings, generator, CHUNK)
      produced += CHUNK
      await waitUntil(async () => (await storedOffsetSum(db, GROUP)) > before, 'the last chunk to be counting', 45_000)
      a.kill('SIGTERM')
      expect((await exitOf(a)).code, a.output()).toBe(0)
      const expected = await tallyTopics(settings)
      expect(expected.total).toBe(produced)
      await waitUntil(async () => (await tallyTable(db)).total >= produced, 'the other sink to count the rest', 45_000)
    } finally {
      a.kill('SIGTERM')
      b.kill('SIGTERM')
    }
    expect((await exitOf(b)).code, b.output()).toBe(0)

    const expected = await tallyTopics(settings)
    const stored = await tallyTable(db)
    expect(stored).toEqual(expected)
    expect(stored.total).toBe(produced)
    // the mix is what was meant: every outcome class present
    expect(Object.keys(stored.outcome).sort()).toEqual(expect.arrayContaining(['error:invalid_field', 'error:invalid_json', 'error:missing_fields', 'filtered:app_version', 'filtered:stale', 'processed']))
  })
})

