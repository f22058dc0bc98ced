import { randomUUID } from 'node:crypto'
import { Admin, Consumer } from '@platformatic/kafka'
import { clientOptions, type KafkaConnection } from '../../src/shell/kafka/connection.ts'
import { rawDeserializers, type ConsumedRecord } from '../../src/shell/kafka/records.ts'
import { waitFor } from './cli.ts'

/**
 * Reads `topic` from the beginning with a throwaway group until `until` holds (a number: at least
 * that many records; failing after 30 s), read_committed unless told otherwise; returns every
 * record read by then.
 */
export async function readUntil(connection: KafkaConnection, topic: string, until: number | ((records: ConsumedRecord[]) => boolean), options: { readCommitted?: boolean } = {}): Promise<ConsumedRecord[]> {
  const done = typeof until === 'number' ? (records: ConsumedRecord[]) => records.length >= until : until
  const consumer = new Consumer({ ...clientOptions(connection, `${connection.clientId}-reader`), groupId: `reader-${randomUUID().slice(0, 8)}`, deserializers: rawDeserializers })
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, isolationLevel: options.readCommitted === false ? 0 : 1, maxWaitTime: 200 })
  const out: ConsumedRecord[] = []
  try {
    stream.on('data', (r: ConsumedRecord) => out.push(r))
    await waitFor(() => done(out), 30_000, typeof until === 'number' ? `${until} records in ${topic}` : `the records of ${topic}`)
  } finally {
    await stream.close()
    await consumer.close(true)
  }
  return out
}

/**
 * The group's committed offset of each of `topic`'s first `partitions` partitions (-1 where none).
 * `stable`: as the broker has it once every transaction holding one is complete (an offset
 * committed in a transaction is the group's only after the broker has written the transaction's
 * markers, which it does after the commit has returned; the client asks again while the broker
 * answers UNSTABLE_OFFSET_COMMIT). Without it, the offsets as they are at the time of asking.
 */
export async function groupCommittedOffsets(connection: KafkaConnection, groupId: string, topic: string, partitions = 1, options: { stable?: boolean } = {}): Promise<bigint[]> {
  const admin = new Admin(clientOptions(connection, `${connection.clientId}-offsets`))
  try {
    const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId], ...(options.stable ? { requireStable: true } : {}) })
    const committed = group?.topics.find((t) => t.name === topic)?.partitions
    return Array.from({ length: partitions }, (_, p) => committed?.find((x) => x.partitionIndex === p)?.committedOffset ?? -1n)
  } finally {
    await admin.close()
  }
}
