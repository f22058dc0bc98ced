import { Consumer, FetchIsolationLevels } from '@platformatic/kafka'
import { clientOptions, type KafkaConnection } from './connection.ts'
import { batchesWithoutAborted, IS_CONTROL } from './read-committed.ts'
import type { ConsumedRecord } from './records.ts'

export interface ReadTopicOptions {
  from: 'earliest' | 'latest'
  /** stop at the end offsets as they were when reading started (default), or keep following */
  follow?: boolean
  /** stop after this many records */
  count?: number
  readCommitted?: boolean
  signal?: AbortSignal
  /** told the end offset of each partition (index = partition) as reading starts: where a read without `follow` stops */
  onEnds?: (ends: readonly bigint[]) => void
}

const MAX_WAIT_MS = 200
const MAX_BYTES_PER_PARTITION = 1024 * 1024

/**
 * Reads a topic with no consumer group at all: every partition is fetched from its leader at an
 * offset kept here, so a tail or an audit leaves nothing behind on the broker (a throwaway group
 * would stay listed, empty, until the broker expires it days later). Hands every record to
 * `onRecord`; `false` from it stops the read. Without `follow` it stops once every partition
 * has reached the end offset it had at the start: the position, not the last record, decides,
 * because transaction markers take offsets that no record carries.
 */
export async function readTopic(connection: KafkaConnection, topic: string, options: ReadTopicOptions, onRecord: (record: ConsumedRecord) => void | boolean): Promise<number> {
  const readCommitted = options.readCommitted ?? true
  // the client's Consumer wants a group id; nothing here joins, commits or even looks up that group
  const consumer = new Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>({
    ...clientOptions(connection, `${connection.clientId}-reader`),
    groupId: `${connection.clientId}-reader-without-group`,
  })
  let read = 0
  try {
    const isolationLevel = readCommitted ? FetchIsolationLevels.READ_COMMITTED : FetchIsolationLevels.READ_UNCOMMITTED
    const ends = (await consumer.listOffsets({ topics: [topic], isolationLevel })).get(topic) ?? []
    options.onEnds?.(ends)
    if (!options.follow && options.from === 'latest') return 0
    const starts = (await consumer.listOffsets({ topics: [topic], timestamp: -2n })).get(topic) ?? []
    // next offset to fetch, per partition
    const positions = (options.from === 'earliest' ? starts : ends).slice()
    const pending = new Set<number>()
    ends.forEach((end, partition) => {
      if (end > (starts[partition] ?? 0n)) pending.add(partition)
    })
    const finished = () => options.signal?.aborted === true || (!options.follow && pending.size === 0)
    const noopCommit = () => {}

    while (!finished()) {
      const metadata = await consumer.metadata({ topics: [topic] })
      const described = metadata.topics.get(topic)
      if (!described) throw new Error(`topic ${topic} vanished while it was read`)
      const byLeader = new Map<number, { partition: number; fetchOffset: bigint; partitionMaxBytes: number; currentLeaderEpoch: number; lastFetchedEpoch: number }[]>()
      for (let partition = 0; partition < described.partitionsCount; partition++) {
        if (!options.follow && !pending.has(partition)) continue
        // a partition added while following starts at its beginning
        const fetchOffset = (positions[partition] ??= 0n)
        const leader = described.partitions[partition]!.leader
        let list = byLeader.get(leader)
        if (!list) byLeader.set(leader, (list = []))
        list.push({ partition, fetchOffset, partitionMaxBytes: MAX_BYTES_PER_PARTITION, currentLeaderEpoch: -1, lastFetchedEpoch: -1 })
      }
      const responses = await Promise.all(
        [...byLeader].map(([node, partitions]) => consumer.fetch({ node, topics: [{ topicId: described.id, partitions }], maxWaitTime: MAX_WAIT_MS, isolationLevel })),
      )
      for (const response of responses) {
        for (const topicResponse of response.responses) {
          for (const fetched of topicResponse.partitions) {
            const partition = fetched.partitionIndex
            const requested = positions[partition]!
            // a read_committed fetch still holds the batches of aborted transactions: the reader skips them
            const delivered = new Set(readCommitted ? batchesWithoutAborted(fetched) : fetched.records)
            for (const batch of fetched.records ?? []) {
              positions[partition] = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n
              if (batch.attributes & IS_CONTROL || !delivered.has(batch)) continue
              for (const raw of batch.records) {
                const offset = batch.firstOffset + BigInt(raw.offsetDelta)
                // a fetch starts at the batch holding the offset asked for; records before it were read already
                if (offset < requested || finished() || (!options.follow && offset >= ends[partition]!)) continue
                const headers = new Map<string, Buffer>()
                for (const [key, value] of raw.headers) if (key) headers.set(key.toString('utf8'), value ?? Buffer.alloc(0))
                const record: ConsumedRecord = {
                  topic,
                  partition,
                  offset,
                  // absent key or value: undefined, as the client's own stream gives them (its type says Buffer)
                  key: (raw.key ?? undefined) as Buffer,
                  value: (raw.value ?? undefined) as Buffer,
                  headers,
                  headerEntries: [...headers],
                  leaderEpoch: batch.partitionLeaderEpoch,
                  timestamp: batch.firstTimestamp + raw.timestampDelta,
                  metadata: {},
                  commit: noopCommit,
                  toJSON: () => ({ topic, partition, offset: offset.toString(), headers: [...headers.keys()] }) as unknown as ReturnType<ConsumedRecord['toJSON']>,
                }
                read++
                if (onRecord(record) === false || (options.count !== undefined && read >= options.count)) return read
              }
            }
            if (pending.has(partition) && positions[partition]! >= ends[partition]!) pending.delete(partition)
          }
        }
      }
    }
    return read
  } finally {
    await new Promise<void>((resolve) => consumer.close(true, () => resolve()))
  }
}
