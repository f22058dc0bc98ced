import { spawnSync } from 'node:child_process'
import { Writable } from 'node:stream'
import { randomUUID } from 'node:crypto'
import { tracingChannel } from 'node:diagnostics_channel'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { Consumer, FetchIsolationLevels, type Message } from '@platformatic/kafka'
import pino from 'pino'
import { describe, expect, inject, it } from 'vitest'
import { correctConsumerSource, CORRECTION_MARK, STABLE_OFFSETS_MARK } from './client-correction.ts'
import { clientOptions, type KafkaConnection } from './connection.ts'
import { beginTransaction, createProducer } from './producer.ts'
import { waitFor } from '../../../test/support/cli.ts'
import { createLogger } from '../log.ts'
import { ConsumerLoop, UNSTABLE_OFFSETS } from './consumer-loop.ts'
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

/** True when `error`, or one it carries (MultipleErrors, ResponseError), is the protocol error `apiId`. */
function carriesProtocolError(error: unknown, apiId: string): boolean {
  if (typeof error !== 'object' || error === null) return false
  const e = error as { apiId?: unknown; errors?: unknown; cause?: unknown }
  if (e.apiId === apiId) return true
  const inner = Array.isArray(e.errors) ? e.errors : typeof e.errors === 'object' && e.errors !== null ? Object.values(e.errors) : []
  return inner.some((x) => carriesProtocolError(x, apiId)) || carriesProtocolError(e.cause, apiId)
}

/**
 * A transactional offset is the group's only once its commit marker is written, after EndTxn is
 * answered. A member that reads its group's offsets in between must not start from the offset
 * before that transaction: it would process the transaction's records again (KIP-447). Here the
 * window is held open: a transaction commits an offset for the group and stays open while a
 * consumer loop joins, and commits only once the loop has asked for the offsets.
 */
describe('committed offsets read once stable', () => {
  it('a consumer loop that joins while a transaction holds its group\'s offset starts after that transaction', async () => {
    const topic = `stable-offsets-${randomUUID().slice(0, 8)}`
    const groupId = `stable-offsets-${randomUUID()}`
    await ensureTopics(connection, [{ name: topic, partitions: 1, replicationFactor: 1 }])
    const plain = createProducer(connection)
    try {
      await plain.send({ messages: Array.from({ length: 20 }, (_, i) => ({ topic, partition: 0, key: 'k', value: `record ${i}` })) })
    } finally {
      await plain.close()
    }

    // a member of the group commits offset 5, then a transaction commits 15 for it and stays open
    const member = new Consumer({ ...clientOptions(connection, 'kpipe-test-member'), groupId, autocommit: false })
    const producer = createProducer(connection, { transactionalId: `tx-${randomUUID()}` })
    const stream = await member.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 200 })
    const fourteenth = await new Promise<Message<Buffer, Buffer, Buffer, Buffer>>((resolve, reject) => {
      stream.on('error', reject)
      stream.on('data', (message) => {
        if (message.offset === 14n) {
          stream.pause()
          resolve(message)
        }
      })
    })
    await member.commit({ offsets: [{ topic, partition: 0, offset: 5n, leaderEpoch: -1 }] })
    const tx = await beginTransaction(producer)
    await tx.addConsumer(member)
    await tx.addOffset(fourteenth)
    await stream.close()
    await member.close(true)

    // what the loop's consumer is answered when it asks for the group's committed offsets
    const answers: { error?: unknown }[] = []
    const offsetsAnswered = tracingChannel('plt:kafka:consumer:offsets').asyncEnd
    const onAnswer = (message: unknown) => {
      const context = message as { operation?: string; client?: { groupId?: string }; error?: unknown }
      if (context.operation === 'listCommittedOffsets' && context.client?.groupId === groupId) answers.push({ error: context.error })
    }
    offsetsAnswered.subscribe(onAnswer)
    const offsets: bigint[] = []
    const warnings: string[] = []
    const loop = new ConsumerLoop({
      connection,
      groupId,
      topics: [topic],
      log: pino({ level: 'warn' }, new Writable({ write: (chunk: Buffer, _encoding, done) => void (warnings.push(chunk.toString()), done()) })),
      handler: (batch) => {
        offsets.push(...batch.map((record) => record.offset))
        return []
      },
    })
    const running = loop.run()
    try {
      // the loop has asked, and been answered, while the transaction was open
      await waitFor(() => answers.length > 0, 60_000, 'the committed offsets asked for')
      await tx.commit()
      await waitFor(() => offsets.includes(19n), 60_000, 'the last record')
    } finally {
      offsetsAnswered.unsubscribe(onAnswer)
      loop.stop()
      await running
      await producer.close()
    }
    // from the transaction's offset: asked while it held that offset, the broker said so, and the loop asked again
    expect(offsets).toEqual([15n, 16n, 17n, 18n, 19n])
    expect(carriesProtocolError(answers[0]!.error, 'UNSTABLE_OFFSET_COMMIT')).toBe(true)
    // and the wait said why, not that Kafka was unavailable
    expect(warnings.some((line) => line.includes(UNSTABLE_OFFSETS))).toBe(true)
    expect(warnings.some((line) => line.includes('Kafka unavailable'))).toBe(false)
  })
})

describe('the correction is there or kpipe refuses to read committed', () => {
  it('applies to the pinned client and nothing else', () => {
    const file = createRequire(import.meta.url).resolve('@platformatic/kafka').replace(/index\.js$/, 'clients/consumer/consumer.js')
    const source = readFileSync(file, 'utf8')
    expect(source).not.toContain(CORRECTION_MARK)
    expect(source).not.toContain(STABLE_OFFSETS_MARK)
    expect(correctConsumerSource(source)).toContain(CORRECTION_MARK)
    expect(correctConsumerSource(source)).toContain(STABLE_OFFSETS_MARK)
    expect(() => correctConsumerSource(source.replace('], false, (error, response) => {', '], true, (error, response) => {'))).toThrow(/is not @platformatic\/kafka 2\.12\.1/)
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
