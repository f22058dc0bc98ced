// Minimal reproduction for @platformatic/kafka: a consumer reads its group's committed offsets
// without `require_stable`, so while a transaction holds an offset of the group (committed, its
// markers not yet written, or still open) it is answered the offset before that transaction.
//
//   npm install @platformatic/kafka          (2.12.1)
//   node unstable-offsets-repro.mjs 127.0.0.1:9092
//
// Needs a real broker with transactions (a one-node KRaft Apache Kafka 4.x works). The window
// between EndTxn and the markers lasts milliseconds; the reproduction holds it open by leaving
// the transaction open while it asks. Exit code 1 when the consumer is answered the offset from
// before the transaction, 0 when it is told the offset is not yet stable.
import { randomUUID } from 'node:crypto'
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'

const bootstrapBrokers = [process.argv[2] ?? '127.0.0.1:9092']
const topic = `unstable-offsets-repro-${randomUUID().slice(0, 8)}`
const groupId = `unstable-offsets-repro-${randomUUID().slice(0, 8)}`

const admin = new Admin({ clientId: 'repro', bootstrapBrokers })
await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 })
await admin.close()

const writer = new Producer({ clientId: 'repro', bootstrapBrokers, serializers: stringSerializers })
await writer.send({ messages: Array.from({ length: 20 }, (_, i) => ({ topic, partition: 0, key: 'k', value: `record ${i}` })) })
await writer.close()

// a member of the group reads up to offset 14 and commits offset 5 ...
const member = new Consumer({ clientId: 'repro', bootstrapBrokers, groupId, deserializers: stringDeserializers, autocommit: false })
const stream = await member.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 200 })
const fourteenth = await new Promise((resolve, reject) => {
  stream.on('error', reject)
  stream.on('data', (message) => {
    if (message.offset === 14n) {
      stream.pause()
      resolve(message)
    }
  })
})
await member.commit({ offsets: [{ topic, partition: 0, offset: 5n, leaderEpoch: -1 }] })

// ... then a transaction commits offset 15 for the group, and is not ended yet
// a transaction timeout (the client sends its request timeout) well beyond any wait for the offsets
const producer = new Producer({ clientId: 'repro', bootstrapBrokers, serializers: stringSerializers, idempotent: true, transactionalId: `repro-${randomUUID()}`, timeout: 60_000 })
const tx = await producer.beginTransaction()
await tx.addConsumer(member)
await tx.addOffset(fourteenth)
await stream.close()
await member.close(true)

// the member that takes the partition over asks for the group's committed offsets
const next = new Consumer({ clientId: 'repro', bootstrapBrokers, groupId, deserializers: stringDeserializers, autocommit: false, retries: 1, retryDelay: 100 })
await next.joinGroup({})
let outcome
try {
  const offsets = await next.listCommittedOffsets({ topics: [{ topic, partitions: [0] }] })
  outcome = `answered offset ${offsets.get(topic)[0]} (the offset before the open transaction; expected UNSTABLE_OFFSET_COMMIT)`
} catch (error) {
  outcome = `refused: ${JSON.stringify(error.errors?.map((e) => e.errors?.map?.((x) => x.apiId) ?? e.message) ?? error.message)}`
}
await next.close(true)
await tx.abort()
await producer.close()
console.log(`committed offsets while a transaction holds offset 15: ${outcome}`)
process.exit(outcome.startsWith('answered') ? 1 : 0)
