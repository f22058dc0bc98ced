import { randomUUID } from 'node:crypto'
import { Consumer } from '@platformatic/kafka'
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
