import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { Consumer, FetchIsolationLevels } from '@platformatic/kafka'
import { describe, expect, inject, it } from 'vitest'
import { correctConsumerSource, CORRECTION_MARK } from './client-correction.ts'
import { clientOptions, type KafkaConnection } from './connection.ts'
import { createProducer } from './producer.ts'
import { waitFor } from '../../../test/support/cli.ts'
import { createLogger } from '../log.ts'
import { ConsumerLoop } from './consumer-loop.ts'
import { readTopic } from './topic-reader.ts'
import { ensureTopics } from './topics.ts'

const connection: KafkaConnection = { bootstrapBrokers: [inject('kafkaBrokers')], clientId: 'kpipe-test' }

/**
 * One transactional id that aborts several transactions (a processor restarted after crashes
 * does) leaves several aborted ranges of one producer id in a partition. A read_committed reader
 * must skip each of them and nothing else. @platformatic/kafka 1.35 kept one range per producer
 * id per fetch and so dropped committed records and delivered aborted ones, and 2.12.1 still does;
 * src/shell/kafka/client-correction.ts corrects it as the client loads (test/client-correction.setup.ts here).
 */
/** Six transactions of one transactional id, every other one aborted; returns the committed values in order. */
async function abortEveryOther(topic: string): Promise<string[]> {
  await ensureTopics(connection, [{ name: topic, partitions: 1, replicationFactor: 1 }])
  const producer = createProducer(connection, { transactionalId: `tx-${randomUUID()}` })
  const expected: string[] = []
  try {
    for (const [round, commit] of [[1, false], [2, true], [3, false], [4, true], [5, false], [6, true]] as const) {
      const tx = await producer.beginTransaction()
      const messages = Array.from({ length: 5 }, (_, i) => ({ topic, partition: 0, key: 'k', value: `round ${round} record ${i}` }))
      await tx.send({ messages })
      if (commit) {
        await tx.commit()
        expected.push(...messages.map((m) => m.value))
      } else {
        await tx.abort()
      }
    }
  } finally {
    await producer.close()
  }
  return expected
}

/**
 * A committed transaction's EndTxn is answered before the broker has written its commit markers;
 * until they are written, the read_committed end offset (the last stable offset) stops before it.
 * Waits until that end is the log's end: every transaction of the topic is decided.
 */
async function untilDecided(topic: string): Promise<void> {
  const consumer = new Consumer({ ...clientOptions(connection, 'kpipe-test-lso'), groupId: `lso-${randomUUID()}` })
  try {
    await waitFor(async () => {
      const stable = (await consumer.listOffsets({ topics: [topic], isolationLevel: FetchIsolationLevels.READ_COMMITTED })).get(topic)?.[0]
      const end = (await consumer.listOffsets({ topics: [topic], isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED })).get(topic)?.[0]
      return stable !== undefined && stable === end
    }, 30_000, 'every transaction of the topic decided')
  } finally {
    await consumer.close()
  }
}

/**
 * One transactional id that aborts several transactions (a processor restarted after crashes
 * does) leaves several aborted ranges of one producer id in a partition. A read_committed reader
 * must skip each of them and nothing else. @platformatic/kafka 1.35 kept one range per producer
 * id per fetch and so dropped committed records and delivered aborted ones, and 2.12.1 still does;
 * src/shell/kafka/client-correction.ts corrects it as the client loads (test/client-correction.setup.ts here).
 * kpipe reads read_committed two ways, and both are held to it.
 */
describe('read_committed across several aborted transactions of one producer', () => {
  it('the consumer loop (the client\'s consumer stream, corrected) delivers exactly the committed records', async () => {
    const topic = `read-committed-${randomUUID().slice(0, 8)}`
    const expected = await abortEveryOther(topic)
    const values: string[] = []
    const loop = new ConsumerLoop({
      connection,
      groupId: `read-committed-${randomUUID()}`,
      topics: [topic],
      log: createLogger('silent'),
      handler: (batch) => {
        values.push(...batch.map((record) => record.value!.toString()))
        return []
      },
    })
    const running = loop.run()
    // the last committed transaction's records come last: once they are in, every earlier one was decided
    await waitFor(() => values.includes(expected.at(-1)!), 30_000, 'the last committed record')
    loop.stop()
    await running
    expect(values).toEqual(expected)
  })

  it('the group-less topic reader (tail, audit) delivers exactly the committed records', async () => {
    const topic = `read-committed-${randomUUID().slice(0, 8)}`
    const expected = await abortEveryOther(topic)
    // the reader stops at the read_committed end as reading starts: the last transaction must be decided by then
    await untilDecided(topic)
    const values: string[] = []
    await readTopic(connection, topic, { from: 'earliest', readCommitted: true }, (record) => {
      values.push(record.value!.toString())
    })
    expect(values).toEqual(expected)
  })
})

describe('the correction is there or kpipe refuses to read committed', () => {
  it('applies to the pinned client and nothing else', () => {
    const file = createRequire(import.meta.url).resolve('@platformatic/kafka').replace(/index\.js$/, 'clients/consumer/consumer.js')
    const source = readFileSync(file, 'utf8')
    expect(source).not.toContain(CORRECTION_MARK)
    expect(correctConsumerSource(source)).toContain(CORRECTION_MARK)
    expect(() => correctConsumerSource(source.replace('abortedRanges.set(aborted.producerId', 'ranges.push('))).toThrow(/is not @platformatic\/kafka 2\.12\.1/)
  })

  it('a process that loaded the client without it stops before reading', () => {
    const loopModule = fileURLToPath(new URL('../../../dist/shell/kafka/consumer-loop.js', import.meta.url))
    const script = `
      const { ConsumerLoop } = await import(${JSON.stringify(loopModule)})
      try { new ConsumerLoop({ connection: ${JSON.stringify(connection)}, groupId: 'any', topics: ['any'], handler: () => [], log: console }) }
      catch (error) { console.log(error.message); process.exit(3) }`
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })
    expect(child.stdout).toContain("lacks kpipe's read_committed correction")
    expect(child.status).toBe(3)
  })
})
