import { randomUUID } from 'node:crypto'
import { tracingChannel } from 'node:diagnostics_channel'
import { describe, expect, inject, it } from 'vitest'
import { correctTransactionSource, TRANSACTION_PARTITIONS_MARK } from './client-correction.ts'
import type { KafkaConnection } from './connection.ts'
import { beginTransaction, createProducer } from './producer.ts'
import type { OutputRecord } from './records.ts'
import { ensureTopics } from './topics.ts'
import { clientModuleSource } from '../../../test/support/client-source.ts'
import { readUntil } from '../../../test/support/kafka.ts'

const connection: KafkaConnection = { bootstrapBrokers: [inject('kafkaBrokers')], clientId: 'kpipe-transaction-partitions-test' }
/** Kafka's API key of AddPartitionsToTxn */
const ADD_PARTITIONS_TO_TXN = 24

/** The AddPartitionsToTxn requests this process sends while `body` runs. */
async function addPartitionsRequests(body: () => Promise<void>): Promise<number> {
  let count = 0
  const started = tracingChannel('plt:kafka:connections:api').start
  const onStart = (message: unknown) => {
    if ((message as { apiKey?: number }).apiKey === ADD_PARTITIONS_TO_TXN) count++
  }
  started.subscribe(onStart)
  try {
    await body()
  } finally {
    started.unsubscribe(onStart)
  }
  return count
}

describe("the client's transaction, corrected to look at each partition of a send once", () => {
  it('is corrected once, and refuses a client it does not know', () => {
    const source = clientModuleSource('clients/producer/transaction.js')
    const corrected = correctTransactionSource(source)
    expect(corrected).toContain(TRANSACTION_PARTITIONS_MARK)
    expect(correctTransactionSource(corrected)).toBe(corrected)
    expect(() => correctTransactionSource(source.replace('const key = `${topic}:${partition}`;', 'const key = topic + partition;'))).toThrow(/is not @platformatic\/kafka 2\.12\.1/)
  })

  it('adds each partition a send needs once, takes every partition modulo the count, and commits every record', async () => {
    const topic = `tx-partitions-${randomUUID().slice(0, 8)}`
    await ensureTopics(connection, [{ name: topic, partitions: 3, replicationFactor: 1 }])
    const producer = createProducer(connection, { transactionalId: `tx-partitions-${randomUUID().slice(0, 8)}` })
    try {
      const tx = await beginTransaction(producer)
      // the client these tests load is the corrected one (test/client-correction.setup.ts)
      expect(Function.prototype.toString.call(tx.constructor)).toContain(TRANSACTION_PARTITIONS_MARK)
      const metadata = await producer.metadata({ topics: [topic] })
      // 1,000 records over partitions 0 and 1 (4 is 1 modulo 3), then the same two, then 0–2
      const toPartitions = (partitions: number[]) => Array.from({ length: 1000 }, (_, i) => ({ topic, partition: partitions[i % partitions.length]!, value: Buffer.alloc(0) }))
      const first = toPartitions([0, 4])
      expect(await addPartitionsRequests(() => Promise.resolve(tx.addPartitions(metadata, first)))).toBe(1)
      expect(new Set(first.map((m) => m.partition))).toEqual(new Set([0, 1]))
      expect(await addPartitionsRequests(() => Promise.resolve(tx.addPartitions(metadata, toPartitions([1, 0]))))).toBe(0)
      const all = toPartitions([3, 1, 2])
      expect(await addPartitionsRequests(() => Promise.resolve(tx.addPartitions(metadata, all)))).toBe(1)
      expect(all.slice(0, 3).map((m) => m.partition)).toEqual([0, 1, 2])
      // the transaction holds the three partitions: a send to them asks for none, and commits
      const records: OutputRecord[] = Array.from({ length: 900 }, (_, i) => ({ topic, partition: i % 3, key: `k${i}`, value: `v${i}` }))
      expect(await addPartitionsRequests(async () => {
        await tx.send({ messages: records })
      })).toBe(0)
      await tx.commit()
    } finally {
      await producer.close()
    }
    const read = await readUntil(connection, topic, 900)
    expect(read.map((r) => r.value!.toString()).sort()).toEqual(Array.from({ length: 900 }, (_, i) => `v${i}`).sort())
    for (const r of read) expect(r.partition).toBe(Number(r.key!.toString().slice(1)) % 3)
  })
})
