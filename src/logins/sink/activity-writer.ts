import type { Database } from '../../shell/postgres/database.ts'
import { ActivityCounts, type ActivityRecord, type OutputTopic } from './login-activity.ts'
import { partitionKey, readStoredOffsets, StaleOffsetsError, writeActivityBatch, type OffsetAdvance, type TopicPartition } from './activity-table.ts'

/** A consumed record as the writer needs it: where it is, and what the aggregation reads. */
export interface PositionedRecord extends ActivityRecord {
  partition: number
  offset: bigint
}

export interface BatchResult {
  /** records counted by this batch */
  counted: number
  /** records skipped because the stored offsets already cover them (delivered again) */
  skipped: number
  /** rows upserted */
  rows: number
  /** transactions lost to another writer before this one won */
  conflicts: number
}

/** Stale-offset conflicts in a row before a batch gives up: each one means another sink committed in between. */
const MAX_CONFLICTS = 20

/**
 * The exactly-once write of the login sink, whatever consumes for it: a batch counts only the
 * records at or after each partition's stored next offset, and moves that offset, in the same
 * transaction, from the value it read to the batch's end. A record delivered again (a restart, a
 * rebalance, a consumer rewound to Kafka's committed offsets) is below the stored offset and is
 * skipped; a batch racing another sink over a partition loses at the database, re-reads the
 * stored offsets and counts only what is left. The positions are cached between batches: the
 * conditional offset update finds a stale cache, so the cache is never trusted blindly.
 */
export class ActivityWriter {
  readonly #db: Pick<Database, 'query' | 'transaction'>
  readonly #consumer: string
  readonly #topicOf: (topic: string) => OutputTopic | undefined
  /** the stored next offset per partition as this writer last read or wrote it; null: none stored */
  readonly #positions = new Map<string, bigint | null>()

  constructor(db: Pick<Database, 'query' | 'transaction'>, consumer: string, topicOf: (topic: string) => OutputTopic | undefined) {
    this.#db = db
    this.#consumer = consumer
    this.#topicOf = topicOf
  }

  /** Where each partition resumes: its stored next offset (absent: none stored). For seeking at an assignment. */
  async storedOffsets(partitions: readonly TopicPartition[]): Promise<Map<string, bigint>> {
    const stored = await readStoredOffsets(this.#db, this.#consumer, partitions)
    for (const p of partitions) this.#positions.set(partitionKey(p), stored.get(partitionKey(p)) ?? null)
    return stored
  }

  /** Forgets the cached positions (partitions were revoked or assigned): the next batch reads them again. */
  forgetPositions(): void {
    this.#positions.clear()
  }

  /** Counts the batch exactly once, or throws with nothing of it written (the caller may hand the same batch again). */
  async write(batch: readonly PositionedRecord[], nowMs = Date.now()): Promise<BatchResult> {
    for (let conflicts = 0; ; conflicts++) {
      const unknown = this.#unknownPartitions(batch)
      if (unknown.length > 0) await this.storedOffsets(unknown)
      const counts = new ActivityCounts()
      const advances = new Map<string, OffsetAdvance>()
      let skipped = 0
      // records come in runs of one partition: its key, position and topic are looked up once per run
      let runTopic: string | undefined
      let runPartition = -1
      let key = ''
      let position: bigint | null = null
      let topic: OutputTopic | undefined
      for (const record of batch) {
        if (record.partition !== runPartition || record.topic !== runTopic) {
          runTopic = record.topic
          runPartition = record.partition
          key = partitionKey(record)
          position = this.#positions.get(key)!
          topic = this.#topicOf(record.topic)
          if (topic === undefined) throw new Error(`login activity: records of topic ${JSON.stringify(record.topic)} are not login outputs`)
        }
        if (position !== null && record.offset < position) {
          skipped++
          continue
        }
        counts.add(topic!, record, nowMs)
        const advance = advances.get(key)
        if (advance === undefined) advances.set(key, { topic: record.topic, partition: record.partition, expected: position, next: record.offset + 1n })
        else if (record.offset >= advance.next) advance.next = record.offset + 1n
      }
      const rows = counts.rows()
      try {
        if (advances.size > 0) await writeActivityBatch(this.#db, this.#consumer, rows, [...advances.values()])
      } catch (error) {
        if (!(error instanceof StaleOffsetsError) || conflicts + 1 >= MAX_CONFLICTS) throw error
        // another sink moved these partitions: read where they are now and count what is left
        for (const p of error.partitions) this.#positions.delete(partitionKey(p))
        continue
      }
      for (const [key, advance] of advances) this.#positions.set(key, advance.next)
      return { counted: counts.records, skipped, rows: rows.length, conflicts }
    }
  }

  #unknownPartitions(batch: readonly PositionedRecord[]): TopicPartition[] {
    const unknown = new Map<string, TopicPartition>()
    for (const record of batch) {
      const key = partitionKey(record)
      if (!this.#positions.has(key) && !unknown.has(key)) unknown.set(key, { topic: record.topic, partition: record.partition })
    }
    return [...unknown.values()]
  }
}
