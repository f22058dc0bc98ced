import { randomUUID } from 'node:crypto'
import { defaultPartitioner as clientDefaultPartitioner, murmur2 as clientMurmur2 } from '@platformatic/kafka'
import { describe, expect, inject, it } from 'vitest'
import { type KafkaConnection } from './connection.ts'
import { defaultPartitioner, keyPartition, murmur2, recordKeyPartition } from './partitioner.ts'
import { createProducer } from './producer.ts'
import { ensureTopics } from './topics.ts'
import { readUntil } from '../../../test/support/kafka.ts'

describe("kpipe's partitioner", () => {
  it("murmur2 is the client's for keys of every length and byte", () => {
    let seed = 12345
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32
    const keys = [Buffer.alloc(0), Buffer.from('user-123'), Buffer.from('21f8e0c4-7d4e-4a9b-b6a2-2f1d3c9e8a71'), Buffer.alloc(7, 0xff)]
    for (let i = 0; i < 3000; i++) keys.push(Buffer.from(Array.from({ length: Math.floor(next() * 70) }, () => Math.floor(next() * 256))))
    for (const key of keys) {
      expect(murmur2(key), key.toString('hex')).toBe(clientMurmur2(key))
      expect(keyPartition(key)).toBe(clientDefaultPartitioner(undefined as never, key))
    }
  })

  it('places a string key as its UTF-8 bytes: ASCII, other scripts, lone surrogates, and keys longer than the scratch buffer', () => {
    const keys = ['', 'user-123', randomUUID(), 'Zoë-Ünal', 'ユーザー42', '😀 emoji', 'lone \ud800 surrogate', 'x'.repeat(341), 'é'.repeat(400), 'y'.repeat(5000)]
    for (const key of keys) expect(recordKeyPartition(key), key.slice(0, 20)).toBe(keyPartition(Buffer.from(key)))
    expect(recordKeyPartition(Buffer.from('user-123'))).toBe(keyPartition(Buffer.from('user-123')))
  })

  it('takes turns per topic for records without a key', () => {
    const partition = defaultPartitioner()
    expect([partition({ topic: 'a' }, undefined), partition({ topic: 'a' }, undefined), partition({ topic: 'b' }, undefined), partition({ topic: 'a' }, undefined)]).toEqual([0, 1, 0, 2])
    expect(partition({ topic: 'a' }, Buffer.from('k'))).toBe(clientMurmur2(Buffer.from('k')) >>> 0)
  })

  it("kpipe's producer puts every keyed record where the client's default would", async () => {
    const connection: KafkaConnection = { bootstrapBrokers: [inject('kafkaBrokers')], clientId: 'kpipe-test' }
    const topic = `partitioner-${randomUUID()}`
    await ensureTopics(connection, [{ name: topic, partitions: 5, replicationFactor: 1 }])
    const producer = createProducer(connection)
    const keys = Array.from({ length: 200 }, (_, i) => `user-${i * 7919}`)
    try {
      await producer.send({ messages: keys.map((key) => ({ topic, key, value: key })) })
    } finally {
      await producer.close()
    }
    const read = await readUntil(connection, topic, keys.length)
    expect(new Set(read.map((r) => r.partition)).size).toBe(5)
    for (const r of read) expect(r.partition, r.key?.toString()).toBe((clientMurmur2(r.key!) >>> 0) % 5)
  })
})
