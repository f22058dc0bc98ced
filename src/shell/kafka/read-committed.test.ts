import { randomUUID } from 'node:crypto'
import { describe, expect, inject, it } from 'vitest'
import type { KafkaConnection } from './connection.ts'
import { createProducer } from './producer.ts'
import { readTopic } from './topic-reader.ts'
import { ensureTopics } from './topics.ts'

const connection: KafkaConnection = { bootstrapBrokers: [inject('kafkaBrokers')], clientId: 'kpipe-test' }

/**
 * One transactional id that aborts several transactions (a processor restarted after crashes
 * does) leaves several aborted ranges of one producer id in a partition. A read_committed reader
 * must skip each of them and nothing else. @platformatic/kafka 1.35 kept one range per producer
 * id per fetch and so dropped committed records and delivered aborted ones;
 * scripts/patch-kafka-client.mjs corrects it after npm install.
 */
describe('read_committed across several aborted transactions of one producer', () => {
  it('delivers exactly the committed records', async () => {
    const topic = `read-committed-${randomUUID().slice(0, 8)}`
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
    const values: string[] = []
    await readTopic(connection, topic, { from: 'earliest', readCommitted: true }, (record) => {
      values.push(record.value!.toString())
    })
    expect(values).toEqual(expected)
  })
})
