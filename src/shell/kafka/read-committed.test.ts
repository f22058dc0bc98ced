import { spawnSync } from 'node:child_process'
import { Writable } from 'node:stream'
import { randomUUID } from 'node:crypto'
import { tracingChannel } from 'node:diagnostics_channel'
import { fileURLToPath } from 'node:url'
import { Consumer, FetchIsolationLevels, Producer, stringSerializers, type Message } from '@platformatic/kafka'
import pino from 'pino'
import { describe, expect, inject, it } from 'vitest'
import { correctConsumerSource, CORRECTION_MARK, STABLE_OFFSETS_MARK, STABLE_OFFSETS_WAIT_MS } from './client-correction.ts'
import { clientOptions, type KafkaConnection } from './connection.ts'
import { createProducer } from './producer.ts'
import { waitFor } from '../../../test/support/cli.ts'
import { createLogger } from '../log.ts'
import { ConsumerLoop, UNSTABLE_OFFSETS } from './consumer-loop.ts'
import { readTopic } from './topic-reader.ts'
import { ensureTopics } from './topics.ts'
import { clientModuleSource } from '../../../test/support/client-source.ts'

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

const OFFSET_FETCH = 9

/**
 * Twenty records in a new topic; a member of `groupId` commits offset 5, then a transaction adds
 * the group and commits offset 15 for it, and stays open: the window between a transaction's
 * EndTxn and its markers, held open. Its timeout is two minutes, so that it outlasts a slow setup.
 */
async function offsetHeldByTransaction(topic: string, groupId: string): Promise<{ commit: () => Promise<void>; close: () => Promise<void> }> {
  await ensureTopics(connection, [{ name: topic, partitions: 1, replicationFactor: 1 }])
  const plain = createProducer(connection)
  try {
    await plain.send({ messages: Array.from({ length: 20 }, (_, i) => ({ topic, partition: 0, key: 'k', value: `record ${i}` })) })
  } finally {
    await plain.close()
  }
  const member = new Consumer({ ...clientOptions(connection, 'kpipe-test-member'), groupId, autocommit: false })
  const holder = new Producer({ ...clientOptions(connection, 'kpipe-test-holder'), idempotent: true, acks: -1, transactionalId: `tx-${randomUUID()}`, producerId: -1n, producerEpoch: -1, timeout: 120_000, serializers: stringSerializers })
  let tx: Awaited<ReturnType<typeof holder.beginTransaction>> | undefined
  try {
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
    tx = await holder.beginTransaction()
    await tx.addConsumer(member)
    await tx.addOffset(fourteenth)
    await stream.close()
  } catch (error) {
    await holder.close()
    throw error
  } finally {
    await member.close(true)
  }
  const held = tx
  return {
    commit: () => held.commit(),
    close: async () => {
      if (!held.completed) await held.abort()
      await holder.close()
    },
  }
}

/** Every OffsetFetch this process is answered UNSTABLE_OFFSET_COMMIT, counted; `stop` unsubscribes. */
function unstableAnswers(): { count: () => number; stop: () => void } {
  let count = 0
  const failed = tracingChannel('plt:kafka:connections:api').error
  const onError = (message: unknown) => {
    const { apiKey, error } = message as { apiKey?: number; error?: unknown }
    if (apiKey === OFFSET_FETCH && carriesProtocolError(error, 'UNSTABLE_OFFSET_COMMIT')) count++
  }
  failed.subscribe(onError)
  return { count: () => count, stop: () => failed.unsubscribe(onError) }
}

interface HeldOffsetRun {
  /** commits the transaction that holds the group's offset */
  commit: () => Promise<void>
  /** the OffsetFetch requests answered UNSTABLE_OFFSET_COMMIT so far */
  unstable: () => number
  /** the offsets the loop was handed, in order */
  offsets: bigint[]
  /** what the loop logged at warn level or above */
  warnings: string[]
}

/**
 * A consumer loop (`readCommitted` or not) on a new group whose offset a transaction holds
 * (offsetHeldByTransaction), while `body` runs; then the loop is stopped and the transaction ended.
 */
async function loopOnHeldOffset(readCommitted: boolean, body: (run: HeldOffsetRun) => Promise<void>): Promise<HeldOffsetRun> {
  const topic = `stable-offsets-${randomUUID().slice(0, 8)}`
  const groupId = `stable-offsets-${randomUUID()}`
  const held = await offsetHeldByTransaction(topic, groupId)
  const unstable = unstableAnswers()
  const run: HeldOffsetRun = { commit: held.commit, unstable: unstable.count, offsets: [], warnings: [] }
  const loop = new ConsumerLoop({
    connection,
    groupId,
    topics: [topic],
    readCommitted,
    log: pino({ level: 'warn' }, new Writable({ write: (chunk: Buffer, _encoding, done) => void (run.warnings.push(chunk.toString()), done()) })),
    handler: (batch) => {
      run.offsets.push(...batch.map((record) => record.offset))
      return []
    },
  })
  const running = loop.run()
  try {
    await body(run)
  } finally {
    unstable.stop()
    loop.stop()
    await running
    await held.close()
  }
  return run
}

/**
 * A transactional offset is the group's only once its commit marker is written, after EndTxn is
 * answered. A member that reads its group's offsets in between must not start from the offset
 * before that transaction: it would process the transaction's records again (KIP-447). The
 * window is held open here: the transaction commits only once the loop has been told its offset
 * is not stable yet.
 */
describe('committed offsets read once stable', () => {
  it('a read_committed loop that joins while a transaction holds its group\'s offset waits for it and starts after it', async () => {
    const { offsets, warnings } = await loopOnHeldOffset(true, async (run) => {
      await waitFor(() => run.unstable() > 0, 30_000, 'an OffsetFetch answered UNSTABLE_OFFSET_COMMIT')
      await run.commit()
      await waitFor(() => run.offsets.includes(19n), 30_000, 'the last record')
    })
    // from the transaction's offset (the client as published starts 10 records early)
    expect(offsets).toEqual([15n, 16n, 17n, 18n, 19n])
    // No session ended, so nothing was logged. (The transaction commits at once after the first
    // answer, so the client's own retries may be what asks again here; the consumer's wait beyond
    // them, STABLE_OFFSETS_WAIT_MS, is what the third test checks.)
    expect(warnings).toEqual([])
  })

  it('a loop that reads uncommitted does not wait for the offset a transaction holds', async () => {
    const { offsets, unstable } = await loopOnHeldOffset(false, async (run) => {
      await waitFor(() => run.offsets.includes(19n), 30_000, 'the last record')
    })
    // the last stable offset, as a reader of uncommitted data asks for it
    expect(offsets).toEqual(Array.from({ length: 15 }, (_, i) => BigInt(i + 5)))
    expect(unstable()).toBe(0)
  })

  it('a loop still refused after the wait says why, and its next session starts after the transaction', async () => {
    const { offsets, warnings } = await loopOnHeldOffset(true, async (run) => {
      await waitFor(() => run.unstable() > 0, 30_000, 'an OffsetFetch answered UNSTABLE_OFFSET_COMMIT')
      const refusedAt = performance.now()
      // the transaction stays open beyond the consumer's wait (STABLE_OFFSETS_WAIT_MS): the session ends, and says why
      await waitFor(() => run.warnings.some((line) => line.includes(UNSTABLE_OFFSETS)), 60_000, 'the warning of a session ended by unstable offsets')
      // not before the consumer has kept asking for most of its wait (the client alone gives up after ~0.75 s)
      expect(performance.now() - refusedAt).toBeGreaterThan(STABLE_OFFSETS_WAIT_MS / 2)
      expect(run.unstable()).toBeGreaterThan(8)
      expect(run.offsets).toEqual([])
      await run.commit()
      await waitFor(() => run.offsets.includes(19n), 60_000, 'the last record')
    })
    expect(offsets).toEqual([15n, 16n, 17n, 18n, 19n])
    expect(warnings.some((line) => line.includes('Kafka unavailable'))).toBe(false)
  }, 120_000)
})

describe('the correction is there or kpipe refuses to read committed', () => {
  it('applies to the pinned client and nothing else', () => {
    const source = clientModuleSource('clients/consumer/consumer.js')
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
