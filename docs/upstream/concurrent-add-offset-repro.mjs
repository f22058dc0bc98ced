// Minimal reproduction for @platformatic/kafka: two Transaction#addOffset calls under way at once
// (two partitions of one group) commit only the first one's offset; the second resolves as if its
// offset were sent.
//
//   npm install @platformatic/kafka          (2.12.1)
//   node concurrent-add-offset-repro.mjs 127.0.0.1:9092
//
// Needs a real broker with transactions (a one-node KRaft Apache Kafka 4.x works). Exit code 1
// and the offsets when the bug is there, 0 when both partitions' offsets are committed.
import { randomUUID } from 'node:crypto'
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'

const bootstrapBrokers = [process.argv[2] ?? '127.0.0.1:9092']
const input = `add-offset-repro-${randomUUID().slice(0, 8)}`
const groupId = `add-offset-repro-${randomUUID().slice(0, 8)}`

const admin = new Admin({ clientId: 'repro', bootstrapBrokers })
await admin.createTopics({ topics: [input], partitions: 2, replicas: 1 })

// five records in each of the two partitions
const writer = new Producer({ clientId: 'repro', bootstrapBrokers, serializers: stringSerializers })
await writer.send({ messages: [0, 1].flatMap((partition) => Array.from({ length: 5 }, (_, i) => ({ topic: input, partition, key: 'k', value: `${partition}-${i}` }))) })
await writer.close()

// read all ten in a group, keeping the last record of each partition
const consumer = new Consumer({ clientId: 'repro', bootstrapBrokers, groupId, deserializers: stringDeserializers })
const stream = await consumer.consume({ topics: [input], mode: 'earliest', autocommit: false, maxWaitTime: 200 })
const last = new Map()
await new Promise((resolve, reject) => {
  stream.on('error', reject)
  stream.on('data', (message) => {
    last.set(message.partition, message)
    if ([...last.values()].every((m) => m.offset === 4n) && last.size === 2) resolve()
  })
})

// one transaction: the consumer group, then both partitions' offsets at once
const producer = new Producer({ clientId: 'repro', bootstrapBrokers, idempotent: true, transactionalId: `repro-${randomUUID()}`, serializers: stringSerializers })
const tx = await producer.beginTransaction()
await tx.addConsumer(consumer)
await Promise.all([tx.addOffset(last.get(0)), tx.addOffset(last.get(1))])
await tx.commit()
await producer.close()
await stream.close()
await consumer.close()

const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] })
await admin.close()
const committed = Object.fromEntries((group?.topics.find((t) => t.name === input)?.partitions ?? []).map((p) => [p.partitionIndex, p.committedOffset]))
console.log('committed offsets (both should be 5):', committed)
if (committed[0] !== 5n || committed[1] !== 5n) process.exit(1)
console.log('both partitions committed')
