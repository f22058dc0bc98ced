// Minimal reproduction for @platformatic/kafka: a read_committed consumer drops committed records
// and delivers aborted ones when one producer id has several aborted transactions in a fetch.
//
//   npm install @platformatic/kafka          (any 1.x, or 2.12.1)
//   node read-committed-repro.mjs 127.0.0.1:9092
//
// Needs a real broker (any Apache Kafka 3.x/4.x with transactions; a one-node KRaft broker
// works). Exit code 1 and the difference when the bug is there, 0 when the records match.
import { randomUUID } from 'node:crypto'
import { Admin, Consumer, FetchIsolationLevels, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'

const bootstrapBrokers = [process.argv[2] ?? '127.0.0.1:9092']
const topic = `read-committed-repro-${randomUUID().slice(0, 8)}`

const admin = new Admin({ clientId: 'repro', bootstrapBrokers })
await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 })
await admin.close()

// One transactional producer (so one producer id): abort, commit, abort, commit, abort, commit.
const producer = new Producer({ clientId: 'repro', bootstrapBrokers, idempotent: true, transactionalId: `repro-${randomUUID()}`, serializers: stringSerializers })
const expected = []
for (const [round, commit] of [[1, false], [2, true], [3, false], [4, true], [5, false], [6, true]]) {
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
await producer.close()

// Read everything back with read_committed, up to the last stable offset.
const consumer = new Consumer({ clientId: 'repro', bootstrapBrokers, groupId: `repro-${randomUUID()}`, deserializers: stringDeserializers })
const end = (await consumer.listOffsets({ topics: [topic], isolationLevel: FetchIsolationLevels.READ_COMMITTED })).get(topic)[0]
const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 200, isolationLevel: FetchIsolationLevels.READ_COMMITTED })
const got = []
await new Promise((resolve, reject) => {
  stream.on('data', (message) => got.push(message.value))
  stream.on('error', reject)
  const timer = setInterval(() => {
    if ((stream.offsetsToFetch.get(`${topic}:0`) ?? 0n) >= end) {
      clearInterval(timer)
      resolve()
    }
  }, 50)
})
await stream.close()
await consumer.close()

const missing = expected.filter((v) => !got.includes(v))
const unexpected = got.filter((v) => !expected.includes(v))
console.log(`committed records: ${expected.length}, read: ${got.length}`)
if (missing.length || unexpected.length) {
  console.log(`committed but not delivered (${missing.length}):`, missing)
  console.log(`aborted but delivered (${unexpected.length}):`, unexpected)
  process.exit(1)
}
console.log('read_committed delivered exactly the committed records')
