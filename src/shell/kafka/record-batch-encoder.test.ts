import { randomUUID } from 'node:crypto'
import * as client from '@platformatic/kafka'
import { describe, expect, inject, it } from 'vitest'
import { correctRecordsSource, ENCODER_MARK } from './client-correction.ts'
import { type KafkaConnection } from './connection.ts'
import { createProducer } from './producer.ts'
import { encodeRecordsBatch } from './record-batch-encoder.ts'
import { ensureTopics } from './topics.ts'
import { readUntil } from '../../../test/support/kafka.ts'
import { clientModuleSource } from '../../../test/support/client-source.ts'

/**
 * kpipe writes the client's record batches itself (src/shell/kafka/record-batch-encoder.ts, put in
 * front of the client's `createRecordsBatch` as it loads): the bytes must be exactly the client's.
 */
type Message = { topic: string; partition: number; key?: Buffer | null; value: Buffer | null; headers?: Map<Buffer, Buffer | null>; timestamp?: bigint | number }
type Options = Parameters<typeof client.createRecordsBatch>[1]

const { createRecordsBatch, readRecordsBatch, Reader, crc32c } = client
/** the client's own encoder, kept beside kpipe's by the load hook */
const clientCreateRecordsBatch = (client as unknown as { clientCreateRecordsBatch: typeof createRecordsBatch }).clientCreateRecordsBatch

/** A small seeded generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0
    return s / 2 ** 32
  }
}

function bytes(next: () => number, max: number): Buffer {
  return Buffer.from(Array.from({ length: Math.floor(next() * max) }, () => Math.floor(next() * 256)))
}

/** Batches of every shape the producer can hand over: null and empty keys and values, large ones, headers or none, timestamps apart. */
function corpus(seed: number, batches: number): { messages: Message[]; options: Options }[] {
  const next = random(seed)
  const base = 1_733_000_000_000n + BigInt(Math.floor(next() * 1e9))
  return Array.from({ length: batches }, (_, b) => {
    const count = 1 + Math.floor(next() ** 2 * (b % 5 === 0 ? 3000 : 200))
    const messages = Array.from({ length: count }, (): Message => {
      const headerCount = Math.floor(next() * 4) - 1
      const headers = headerCount < 0 ? undefined : new Map(Array.from({ length: headerCount }, () => [bytes(next, 20), next() < 0.1 ? null : bytes(next, next() < 0.05 ? 400 : 30)] as [Buffer, Buffer | null]))
      const key = next() < 0.1 ? null : next() < 0.05 ? Buffer.alloc(0) : bytes(next, 40)
      const value = next() < 0.05 ? null : next() < 0.02 ? bytes(next, 70_000) : bytes(next, 600)
      return { topic: 'logins', partition: b % 3, key, value, headers, timestamp: base + BigInt(Math.floor((next() - 0.3) * 600_000)) }
    })
    const options: Options = b % 2 === 0
      ? {}
      : { producerId: BigInt(Math.floor(next() * 1e12)), producerEpoch: b % 7, transactionalId: b % 4 === 1 ? 'tx' : undefined, partitionLeaderEpoch: b % 11,
          sequences: { getWithDefault: (key: string, fallback: number) => (key === `logins:${b % 3}` ? b * 1000 : fallback) } } as unknown as Options
    return { messages, options }
  })
}

/** Each encoder gets its own copies: both set the messages' timestamps. */
function copies(messages: Message[]): Message[] {
  return messages.map((m) => ({ ...m }))
}

describe("kpipe's record-batch encoder", () => {
  it('is in front of the loaded client', () => {
    expect(createRecordsBatch.toString()).toContain(ENCODER_MARK)
    expect(typeof clientCreateRecordsBatch).toBe('function')
  })

  it("writes exactly the client's bytes for every batch of a seeded corpus", () => {
    let compared = 0
    for (const { messages, options } of corpus(20261204, 120)) {
      const ours = createRecordsBatch(copies(messages) as never, options).buffer
      const theirs = clientCreateRecordsBatch(copies(messages) as never, options).buffer
      expect(encodeRecordsBatch(copies(messages), options as never, (b) => crc32c(b))).toBeDefined()
      expect(ours.equals(theirs)).toBe(true)
      compared += messages.length
    }
    expect(compared).toBeGreaterThan(5000)
  })

  it('reads back with the client: every record, and a CRC that matches', () => {
    const { messages, options } = corpus(7, 1)[0]!
    const written = createRecordsBatch(copies(messages) as never, options).buffer
    const batch = readRecordsBatch(Reader.from(written))
    expect(batch.crc).toBe(crc32c(written.subarray(21)))
    expect(batch.records.map((r) => [r.key, r.value, r.headers])).toEqual(
      messages.map((m) => [m.key ?? null, m.value, [...(m.headers ?? new Map())].map(([k, v]) => [k, v ?? null])]),
    )
  })

  it('sets each timestamp it uses, the time of the call where there was none', () => {
    const messages: Message[] = [{ topic: 't', partition: 0, value: Buffer.from('a') }, { topic: 't', partition: 0, value: Buffer.from('b'), timestamp: 5n }]
    const before = BigInt(Date.now())
    const written = createRecordsBatch(messages as never, {}).buffer
    expect(messages[0]!.timestamp).toBeGreaterThanOrEqual(before)
    expect(messages[1]!.timestamp).toBe(5n)
    expect(readRecordsBatch(Reader.from(written)).firstTimestamp).toBe(messages[0]!.timestamp)
  })

  it('leaves to the client what it does not write itself, with the same result', () => {
    const value = Buffer.from('value')
    const cases: [string, Message[], Options][] = [
      ['compressed', [{ topic: 't', partition: 0, value, timestamp: 1n }], { compression: 'gzip' } as Options],
      ['a timestamp as a number', [{ topic: 't', partition: 0, value, timestamp: 1_733_000_000_000n }, { topic: 't', partition: 0, value, timestamp: 1_733_000_000_001 }], {}],
      ['timestamps 2^30 ms apart', [{ topic: 't', partition: 0, value, timestamp: 1n }, { topic: 't', partition: 0, value, timestamp: 1n + 2n ** 30n }], {}],
    ]
    for (const [what, messages, options] of cases) {
      expect(encodeRecordsBatch(copies(messages), options as never, (b) => crc32c(b)), what).toBeUndefined()
      const ours = createRecordsBatch(copies(messages) as never, options).buffer
      const theirs = clientCreateRecordsBatch(copies(messages) as never, options).buffer
      expect(ours.equals(theirs), what).toBe(true)
    }
  })

  it('refuses a records module that is not the code it reproduces', () => {
    const source = clientModuleSource('protocol/records.js')
    const corrected = correctRecordsSource(source, 'file:///encoder.js')
    expect(corrected).toContain(ENCODER_MARK)
    expect(correctRecordsSource(corrected, 'file:///encoder.js')).toBe(corrected)
    expect(() => correctRecordsSource(source.replace('.appendInt8(0) // Attributes', '.appendInt8(1) // Attributes'), 'file:///encoder.js')).toThrow(/is not @platformatic\/kafka 2\.12\.1/)
  })

  it('a real broker accepts its batches and gives every record back', async () => {
    const connection: KafkaConnection = { bootstrapBrokers: [inject('kafkaBrokers')], clientId: 'kpipe-test' }
    const topic = `encoder-${randomUUID()}`
    await ensureTopics(connection, [{ name: topic, partitions: 1, replicationFactor: 1 }])
    const producer = createProducer(connection)
    const sent = Array.from({ length: 2000 }, (_, i) => ({ key: `k${i}`, value: 'v'.repeat(i % 300), headers: { n: String(i) } }))
    try {
      await producer.send({ messages: sent.map((m) => ({ topic, partition: 0, ...m })) })
    } finally {
      await producer.close()
    }
    const read = await readUntil(connection, topic, sent.length)
    expect(read.map((r) => [r.key?.toString(), r.value?.toString(), r.headers.get('n')?.toString()])).toEqual(sent.map((m) => [m.key, m.value, m.headers.n]))
  })
})
