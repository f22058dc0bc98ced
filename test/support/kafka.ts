import { randomUUID } from 'node:crypto'
import { Consumer } from '@platformatic/kafka'
import { clientOptions, type KafkaConnection } from '../../src/shell/kafka/connection.ts'
import { rawDeserializers, type ConsumedRecord } from '../../src/shell/kafka/records.ts'
import { waitFor } from './cli.ts'

/**
 * Reads `topic` from the beginning with a throwaway group until at least `expected` records have
 * come (failing after 30 s), read_committed unless told otherwise; returns every record read.
 */
export async function readAtLeast(connection: KafkaConnection, topic: string, expected: number, options: { readCommitted?: boolean } = {}): Promise<ConsumedRecord[]> {
  const consumer = new Consumer({ ...clientOptions(connection, `${connection.clientId}-reader`), groupId: `reader-${randomUUID().slice(0, 8)}`, deserializers: rawDeserializers })
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, isolationLevel: options.readCommitted === false ? 0 : 1, maxWaitTime: 200 })
  const out: ConsumedRecord[] = []
  try {
    stream.on('data', (r: ConsumedRecord) => out.push(r))
    await waitFor(() => out.length >= expected, 30_000, `${expected} records in ${topic}`)
  } finally {
    await stream.close()
    await consumer.close(true)
  }
  return out
}
