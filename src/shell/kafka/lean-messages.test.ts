import { randomUUID } from 'node:crypto'
import { Consumer, DeserializationErrorActions, type ConsumeOptions, type DeserializationErrorContext, type Message } from '@platformatic/kafka'
import { describe, expect, inject, it } from 'vitest'
import { correctMessagesStreamSource, LEAN_MESSAGES_MARK } from './client-correction.ts'
import { clientOptions, type KafkaConnection } from './connection.ts'
import { createProducer } from './producer.ts'
import { rawDeserializers } from './records.ts'
import { ensureTopics } from './topics.ts'
import { clientModuleSource } from '../../../test/support/client-source.ts'

const connection: KafkaConnection = { bootstrapBrokers: [inject('kafkaBrokers')], clientId: 'kpipe-test' }

type RawMessage = Message<Buffer | undefined, Buffer | undefined, string, Buffer>

/** Four records in one send, so one record batch and one fetch: the 1st and 3rd with a header, the others without. */
async function fourRecords(topic: string): Promise<void> {
  await ensureTopics(connection, [{ name: topic, partitions: 1, replicationFactor: 1 }])
  const producer = createProducer(connection)
  try {
    await producer.send({
      messages: [
        { topic, partition: 0, key: 'a', value: 'with a header', headers: new Map([['h', 'one']]) },
        { topic, partition: 0, key: 'b', value: 'without' },
        { topic, partition: 0, key: 'c', value: 'with a header', headers: new Map([['h', 'three']]) },
        { topic, partition: 0, key: 'd', value: 'without' },
      ],
    })
  } finally {
    await producer.close()
  }
}

/** Reads `count` messages of `topic` from its start, group `groupId`, offsets committed by hand only. */
async function readMessages(consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>, topic: string, count: number, extra: Partial<ConsumeOptions<Buffer | undefined, Buffer | undefined, string, Buffer>> = {}): Promise<RawMessage[]> {
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, ...extra })
  const messages: RawMessage[] = []
  try {
    for await (const message of stream) {
      messages.push(message)
      if (messages.length === count) break
    }
  } finally {
    await stream.close()
  }
  return messages
}

/** A consumer of a group of its own whose value deserializer refuses the records without headers (their value is "without"). */
function refusingWithout(): Consumer<Buffer | undefined, Buffer | undefined, string, Buffer> {
  return new Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>({
    ...clientOptions(connection, 'kpipe-test-lean'),
    groupId: `lean-${randomUUID()}`,
    deserializers: { ...rawDeserializers, value: (data) => {
      if (data?.toString() === 'without') throw new Error('unreadable')
      return data
    } },
  })
}

async function committed(consumer: Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>, topic: string): Promise<bigint | undefined> {
  return (await consumer.listCommittedOffsets({ topics: [{ topic, partitions: [0] }] })).get(topic)?.[0]
}

/**
 * The client's consumed messages, made lean as it loads (client-correction.ts): one `commit` for
 * the messages of a fetch, and one empty headers Map and array for every record without headers.
 * What a message holds and does must stay the client's.
 */
describe('lean consumed messages', () => {
  it('applies to the pinned client once, and refuses a MessagesStream that is not the one it changes', () => {
    const source = clientModuleSource('clients/consumer/messages-stream.js')
    const corrected = correctMessagesStreamSource(source)
    expect(corrected).toContain(`/*! ${LEAN_MESSAGES_MARK}`)
    expect(correctMessagesStreamSource(corrected)).toBe(corrected)
    // the per-record bind is gone from the messages; only the unreadable record's context binds one
    expect(corrected.split('this.#commit.bind(').length).toBe(2)
    const changed = source.replace('const headerEntries = [];', 'const headerEntries = new Array();')
    expect(() => correctMessagesStreamSource(changed, 'a changed client')).toThrow(/a changed client is not @platformatic\/kafka 2\.12\.1.*reinstall kpipe/)
  })

  it('delivers the same keys, values, headers and offsets, commits the message it is called on, and shares only what is empty', async () => {
    const topic = `lean-${randomUUID()}`
    await fourRecords(topic)
    const consumer = new Consumer({ ...clientOptions(connection, 'kpipe-test-lean'), groupId: `lean-${randomUUID()}`, deserializers: rawDeserializers })
    try {
      const messages = await readMessages(consumer, topic, 4)
      expect(messages.map((m) => [m.key?.toString(), m.value?.toString(), m.offset, [...m.headers].map(([k, v]) => [k, v.toString()])])).toEqual([
        ['a', 'with a header', 0n, [['h', 'one']]],
        ['b', 'without', 1n, []],
        ['c', 'with a header', 2n, [['h', 'three']]],
        ['d', 'without', 3n, []],
      ])
      const [first, second, third, fourth] = messages as [RawMessage, RawMessage, RawMessage, RawMessage]

      // records with headers keep Maps of their own, which take changes
      expect(first.headers).not.toBe(third.headers)
      first.headers.set('added', Buffer.from('x'))
      expect([...third.headers.keys()]).toEqual(['h'])

      // records without: one empty Map and array, which refuse changes rather than pass them on
      expect(second.headers).toBe(fourth.headers)
      expect(second.headers).toEqual(new Map())
      expect(() => second.headers.set('h', Buffer.from('x'))).toThrow(/no headers.*read-only.*new Map\(message\.headers\)/)
      expect(() => second.headers.delete('h')).toThrow(/read-only/)
      expect(() => second.headers.clear()).toThrow(/read-only/)
      expect(fourth.headers.size).toBe(0)
      expect(() => (second.headerEntries as unknown[]).push(['h', Buffer.from('x')])).toThrow(TypeError)
      expect(JSON.parse(JSON.stringify(fourth))).toMatchObject({ key: { type: 'Buffer' }, headers: [], offset: '3', partition: 0, topic })

      // one commit for the fetch's messages; called on a message, it commits the offset after that
      // message (the client commits what it is asked, backwards too)
      expect(first.commit).toBe(fourth.commit)
      expect(await committed(consumer, topic)).toBe(-1n)
      await third.commit()
      expect(await committed(consumer, topic)).toBe(3n)
      await second.commit()
      expect(await committed(consumer, topic)).toBe(2n)
      await new Promise<void>((resolve, reject) => fourth.commit((error) => (error ? reject(error) : resolve())))
      expect(await committed(consumer, topic)).toBe(4n)

      // away from its message it cannot know what to commit, and says so
      const { commit } = first
      expect(() => commit()).toThrow(/Call commit on its message: message\.commit\(\)/)
    } finally {
      await consumer.close(true)
    }
  })

  type Commit = () => Promise<void>
  it.each([
    ['onDeserializationError', (commits: Commit[]) => ({
      onDeserializationError: (context: DeserializationErrorContext) => {
        commits.push(context.commit as Commit)
        return DeserializationErrorActions.SKIP
      },
    })],
    // false: skip the record (true would fail the stream)
    ['the deprecated onCorruptedMessage', (commits: Commit[]) => ({
      onCorruptedMessage: (_record: unknown, _topic: string, _partition: number, _firstTimestamp: bigint, _firstOffset: bigint, commit: unknown) => {
        commits.push(commit as Commit)
        return false
      },
    })],
  ])("gives a record that cannot be read a commit of its own, after that record's offset (%s)", async (_handler, handlerOf) => {
    const topic = `lean-unreadable-${randomUUID()}`
    await fourRecords(topic)
    const consumer = refusingWithout()
    try {
      const commits: Commit[] = []
      const messages = await readMessages(consumer, topic, 2, handlerOf(commits))
      expect(messages.map((m) => m.offset)).toEqual([0n, 2n])
      expect(commits).toHaveLength(2)
      await commits[0]!()
      expect(await committed(consumer, topic)).toBe(2n)
      await commits[1]!()
      expect(await committed(consumer, topic)).toBe(4n)
    } finally {
      await consumer.close(true)
    }
  })

  it('a record without headers whose hook failed is delivered with headers of its own, as the client delivers it', async () => {
    const topic = `lean-hook-${randomUUID()}`
    await fourRecords(topic)
    const consumer = new Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>({ ...clientOptions(connection, 'kpipe-test-lean'), groupId: `lean-${randomUUID()}`, deserializers: rawDeserializers })
    try {
      const messages = await readMessages(consumer, topic, 4, {
        beforeDeserialization: (payload, type, _message, callback) => {
          callback(type === 'key' && payload?.toString() === 'b' ? new Error('refused by the hook') : null)
        },
        onDeserializationError: () => DeserializationErrorActions.CONTINUE,
      })
      const [, failed, , plain] = messages as [RawMessage, RawMessage, RawMessage, RawMessage]
      expect(failed.metadata.deserializationError).toMatchObject({ payloadType: 'key' })
      expect(failed.key?.toString()).toBe('b')
      expect(failed.headers).not.toBe(plain.headers)
      failed.headers.set('added', Buffer.from('x'))
      expect(plain.headers.size).toBe(0)
    } finally {
      await consumer.close(true)
    }
  })
})
