import { randomUUID } from 'node:crypto'
import { Consumer, FetchIsolationLevels } from '@platformatic/kafka'
import { clientOptions, type KafkaConnection } from './connection.ts'
import { assertReadCommittedCorrected } from './read-committed.ts'
import { rawDeserializers, type ConsumedRecord } from './records.ts'

export interface ReadTopicOptions {
  from: 'earliest' | 'latest'
  /** stop at the end offsets as they were when reading started (default), or keep following */
  follow?: boolean
  /** stop after this many records */
  count?: number
  readCommitted?: boolean
  signal?: AbortSignal
}

/**
 * Reads a topic outside any consumer group's progress (a throwaway group that never commits),
 * handing every record to `onRecord`. Without `follow` it stops once every partition has reached
 * the end offset it had at the start: the position, not the last record, decides, because
 * transaction markers take offsets that no record carries.
 */
export async function readTopic(connection: KafkaConnection, topic: string, options: ReadTopicOptions, onRecord: (record: ConsumedRecord) => void | boolean): Promise<number> {
  const readCommitted = options.readCommitted ?? true
  if (readCommitted) assertReadCommittedCorrected()
  const consumer = new Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>({
    ...clientOptions(connection, `${connection.clientId}-reader`),
    groupId: `kpipe-reader-${randomUUID()}`,
    deserializers: rawDeserializers,
    sessionTimeout: 10_000,
    heartbeatInterval: 3000,
  })
  let read = 0
  try {
    const isolationLevel = readCommitted ? FetchIsolationLevels.READ_COMMITTED : FetchIsolationLevels.READ_UNCOMMITTED
    const ends = (await consumer.listOffsets({ topics: [topic], isolationLevel })).get(topic) ?? []
    if (!options.follow && options.from === 'latest') return 0
    const starts = (await consumer.listOffsets({ topics: [topic], timestamp: -2n })).get(topic) ?? []
    const pending = new Set<number>()
    ends.forEach((end, partition) => {
      if (end > (starts[partition] ?? 0n)) pending.add(partition)
    })
    if (!options.follow && pending.size === 0) return 0
    const stream = await consumer.consume({ topics: [topic], mode: options.from, autocommit: false, maxWaitTime: 200, isolationLevel })
    const reached = () => {
      for (const partition of pending) {
        const next = stream.offsetsToFetch.get(`${topic}:${partition}`)
        if (next !== undefined && next >= ends[partition]!) pending.delete(partition)
      }
      return !options.follow && pending.size === 0
    }
    try {
      await new Promise<void>((resolve, reject) => {
        let done = false
        const finish = (error?: unknown) => {
          if (done) return
          done = true
          options.signal?.removeEventListener('abort', onAbort)
          if (error) reject(error)
          else resolve()
        }
        const onAbort = () => finish()
        options.signal?.addEventListener('abort', onAbort, { once: true })
        if (options.signal?.aborted) return finish()
        const drain = () => {
          let record: ConsumedRecord | null
          while (!done && (record = stream.read() as ConsumedRecord | null) !== null) {
            if (record.topic !== topic || (!options.follow && record.offset >= ends[record.partition]!)) continue
            read++
            if (onRecord(record) === false || (options.count !== undefined && read >= options.count)) return finish()
          }
          if (reached()) finish()
        }
        stream.on('readable', drain)
        stream.on('fetch', drain)
        stream.on('error', finish)
        stream.on('close', () => finish())
        drain()
      })
    } finally {
      await stream.close().catch(() => {})
    }
    return read
  } finally {
    await new Promise<void>((resolve) => consumer.close(true, () => resolve()))
  }
}
