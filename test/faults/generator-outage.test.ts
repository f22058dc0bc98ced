import { expect, it } from 'vitest'
import { createLoginTopics, loginEnv, settingsOf } from '../../src/logins/logins.fixture.ts'
import { LoginGenerator } from '../../src/logins/generate/login-generator.ts'
import { kafkaConnection } from '../../src/shell/kafka/connection.ts'
import { readTopic } from '../../src/shell/kafka/topic-reader.ts'
import { exitOf, spawnKpipe, waitFor } from '../support/cli.ts'
import { faultSeed, ownBroker, reportFigures, seconds } from './fault-support.ts'
import { OffsetWatch } from './offset-watch.ts'

const COUNT = 30_000
const RATE = 1500

/**
 * `kpipe logins generate --count N` while its broker is stopped and started again: the generator
 * must ride through the outage by itself and end with exactly the N events of its seed in the
 * topic — none lost, none written twice.
 */
it('logins generate --count rides through a broker restart: exactly N events, none lost, none repeated', async () => {
  const { seed } = faultSeed('generator-outage')
  const broker = await ownBroker()
  const env = loginEnv({ KAFKA_BROKERS: broker.bootstrap, LOG_LEVEL: 'warn' })
  const settings = settingsOf(env)
  let generator: ReturnType<typeof spawnKpipe> | undefined
  try {
    await createLoginTopics(settings)
    const started = Date.now()
    generator = spawnKpipe(['logins', 'generate', '--count', String(COUNT), '--rate', String(RATE), '--seed', String(seed), '--invalid-ratio', '0.2'], env)
    const watch = new OffsetWatch(settings)
    let atStop: number
    try {
      atStop = await waitFor(async () => {
        if (generator!.exitCode !== null) throw new Error(`the generator exited early: ${generator!.output()}`)
        const n = await watch.endSum([settings.TOPIC_LOGINS])
        return n >= COUNT / 5 ? n : undefined
      }, 120_000, 'a fifth of the events in the topic')
    } finally {
      await watch.close()
    }
    const stopAt = Date.now()
    await broker.stop()
    await broker.restart()
    const outageMs = Date.now() - stopAt
    const exit = await exitOf(generator)
    expect(exit, generator.output().slice(-3000)).toEqual({ code: 0, signal: null })
    expect(atStop).toBeLessThan(COUNT)
    // it did meet the outage, and said so
    expect(generator.output()).toMatch(/Kafka unavailable, sending the same \d+ events again \(.*\); retrying in/)

    const keys: string[] = []
    await readTopic(kafkaConnection(settings, 'fault-reader'), settings.TOPIC_LOGINS, { from: 'earliest', readCommitted: false }, (r) => {
      keys.push(r.key?.toString('utf8') ?? '')
    })
    const expected = new LoginGenerator(seed, 0.2)
    const want: string[] = []
    for (let i = 0; i < COUNT; i++) want.push(expected.next(Math.floor(Date.now() / 1000)).key ?? '')
    const count = (list: string[]) => list.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>())
    const [got, wanted] = [count(keys), count(want)]
    const lost = [...wanted].reduce((n, [k, c]) => n + Math.max(0, c - (got.get(k) ?? 0)), 0)
    const repeated = [...got].reduce((n, [k, c]) => n + Math.max(0, c - (wanted.get(k) ?? 0)), 0)
    reportFigures('generator-outage', { seed, count: COUNT, inTopicAtStop: atStop, outageSeconds: seconds(outageMs), inTopic: keys.length, lost, repeated, totalSeconds: seconds(Date.now() - started) })
    expect({ inTopic: keys.length, lost, repeated }).toEqual({ inTopic: COUNT, lost: 0, repeated: 0 })
  } finally {
    if (generator && generator.exitCode === null) generator.kill('SIGKILL')
    await broker.remove()
  }
})
