import { expect, it } from 'vitest'
import { createLoginTopics, loginEnv, settingsOf } from '../../src/logins/logins.fixture.ts'
import { LoginGenerator } from '../../src/logins/generate/login-generator.ts'
import { kafkaConnection } from '../../src/shell/kafka/connection.ts'
import { readTopic } from '../../src/shell/kafka/topic-reader.ts'
import { runGenerator } from '../../src/logins/generate/run-generator.ts'
import { createLogger } from '../../src/shell/log.ts'
import type { Settings } from '../../src/shell/settings.ts'
import { AckLosingProxy } from '../support/ack-losing-proxy.ts'
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

    const { inTopic, lost, repeated } = await compareWithSeed(settings, seed, COUNT)
    reportFigures('generator-outage', { seed, count: COUNT, inTopicAtStop: atStop, outageSeconds: seconds(outageMs), inTopic, lost, repeated, totalSeconds: seconds(Date.now() - started) })
    expect({ inTopic, lost, repeated }).toEqual({ inTopic: COUNT, lost: 0, repeated: 0 })
  } finally {
    if (generator && generator.exitCode === null) generator.kill('SIGKILL')
    await broker.remove()
  }
})

/**
 * The case a clean broker restart meets only now and then (it did in CI: one event twice): the
 * broker writes a batch, its answer is lost, and Kafka stays away for longer than the client's
 * usual three tries. A proxy in front of a real broker makes it happen every time. The same
 * records sent again by a producer that forgot its id would be a second write; repeated by the
 * client with the first try's producer id and sequence numbers, the broker drops them.
 */
it('a batch written whose acknowledgement was lost, Kafka then away for longer than the client tries: written once', async () => {
  const { seed } = faultSeed('generator-lost-ack')
  const { proxy, broker, settings } = await brokerBehindProxy()
  const lines: string[] = []
  const log = createLogger('warn', 'generator', { write: (line: string) => void lines.push(line) })
  try {
    const count = 6000
    const { generating, lostAfter } = generateLosingSecondAck(proxy, settings, { count, seed, log, signal: new AbortController().signal })
    // away until the client has tried more often than its usual three times
    await waitFor(() => (proxy.refused > 6 ? true : undefined), 60_000, 'the client trying through the outage')
    proxy.heal()
    const result = await generating
    expect(proxy.lostAcks).toBe(1)
    expect(lines.join('')).toMatch(/Kafka unavailable, sending the same \d+ events again/)
    const { inTopic, lost, repeated } = await compareWithSeed(settings, seed, count)
    reportFigures('generator-lost-ack', { seed, count, lostAckAfter: lostAfter(), refusedConnections: proxy.refused, sent: result.sent, inTopic, lost, repeated })
    expect({ sent: result.sent, inTopic, lost, repeated }).toEqual({ sent: count, inTopic: count, lost: 0, repeated: 0 })
  } finally {
    await broker.remove()
    await proxy.close()
  }
})

/** Stopped while the client repeats a send into an outage: the generator ends without Kafka coming back and counts only what was acknowledged. */
it('stopped while Kafka is away: ends without waiting for Kafka, counting only acknowledged events', async () => {
  const { proxy, broker, settings } = await brokerBehindProxy()
  try {
    const stop = new AbortController()
    const { generating, lostAfter } = generateLosingSecondAck(proxy, settings, { count: 6000, seed: 1, log: createLogger('silent'), signal: stop.signal })
    await waitFor(() => (proxy.refused > 2 ? true : undefined), 60_000, 'the client trying through the outage')
    // Kafka stays away: without the stop ending the client's repeating this would never return
    stop.abort()
    const result = await generating
    expect(result.sent).toBe(lostAfter())
    expect(proxy.lostAcks).toBe(1)
  } finally {
    await broker.remove()
    await proxy.close()
  }
})

/** A broker of the test's own, advertised as (and reached only through) an AckLosingProxy, with the login topics. */
async function brokerBehindProxy(): Promise<{ proxy: AckLosingProxy; broker: Awaited<ReturnType<typeof ownBroker>>; settings: Settings }> {
  const proxy = await AckLosingProxy.start()
  const broker = await ownBroker({ properties: () => ({ 'advertised.listeners': `PLAINTEXT://127.0.0.1:${proxy.port}` }) })
  proxy.forwardTo(broker.info.port)
  const settings = settingsOf(loginEnv({ KAFKA_BROKERS: `127.0.0.1:${proxy.port}` }))
  try {
    await createLoginTopics(settings)
  } catch (error) {
    await broker.remove()
    await proxy.close()
    throw error
  }
  return { proxy, broker, settings }
}

/** runGenerator through the proxy, as fast as it goes; the answer to its second send is lost. `lostAfter`: the events acknowledged before it. */
function generateLosingSecondAck(proxy: AckLosingProxy, settings: Settings, options: { count: number; seed: number; log: ReturnType<typeof createLogger>; signal: AbortSignal }) {
  let acknowledgedBefore: number | undefined
  const generating = runGenerator({
    ...options,
    settings,
    rate: 0,
    invalidRatio: 0.2,
    onProgress: (sent) => {
      if (acknowledgedBefore !== undefined) return
      acknowledgedBefore = sent
      proxy.loseNextProduceAck()
    },
  })
  return { generating, lostAfter: () => acknowledgedBefore }
}

/** The keys in the topic against the `count` keys the seed draws: how many are missing, how many extra. */
async function compareWithSeed(settings: Settings, seed: number, count: number): Promise<{ inTopic: number; lost: number; repeated: number }> {
  const keys: string[] = []
  await readTopic(kafkaConnection(settings, 'fault-reader'), settings.TOPIC_LOGINS, { from: 'earliest', readCommitted: false }, (r) => {
    keys.push(r.key?.toString('utf8') ?? '')
  })
  const expected = new LoginGenerator(seed, 0.2)
  const want: string[] = []
  for (let i = 0; i < count; i++) want.push(expected.next(Math.floor(Date.now() / 1000)).key ?? '')
  const tally = (list: string[]) => list.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>())
  const [got, wanted] = [tally(keys), tally(want)]
  const lost = [...wanted].reduce((n, [k, c]) => n + Math.max(0, c - (got.get(k) ?? 0)), 0)
  const repeated = [...got].reduce((n, [k, c]) => n + Math.max(0, c - (wanted.get(k) ?? 0)), 0)
  return { inTopic: keys.length, lost, repeated }
}
