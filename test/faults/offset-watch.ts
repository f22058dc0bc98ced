import { Admin, FetchIsolationLevels } from '@platformatic/kafka'
import { clientOptions, kafkaConnection } from '../../src/shell/kafka/connection.ts'
import type { Settings } from '../../src/shell/settings.ts'

/**
 * End offsets and a group's committed offsets, through one admin client kept open: the fault
 * tests poll these many times a second while processes are killed around them.
 */
export class OffsetWatch {
  readonly #admin: Admin
  readonly #settings: Settings

  constructor(settings: Settings) {
    this.#settings = settings
    this.#admin = new Admin(clientOptions(kafkaConnection(settings, 'fault-watch')))
  }

  /** Sum of the end offsets of `topics` (every partition; uncommitted records and markers included). */
  async endSum(topics: string[]): Promise<number> {
    const metadata = await this.#admin.metadata({ topics })
    const result = await this.#admin.listOffsets({
      topics: topics.map((name) => ({ name, partitions: Array.from({ length: metadata.topics.get(name)?.partitionsCount ?? 0 }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n })) })),
    })
    let sum = 0
    for (const t of result) for (const p of t.partitions) sum += Number(p.offset)
    return sum
  }

  /** Sum over a topic's partitions (default: the login input) of what `groupId` has committed; a partition without a commit counts 0. */
  async committedSum(groupId: string, topicName = this.#settings.TOPIC_LOGINS): Promise<number> {
    const [group] = await this.#admin.listConsumerGroupOffsets({ groups: [groupId] })
    const topic = group?.topics.find((t) => t.name === topicName)
    let sum = 0
    for (const p of topic?.partitions ?? []) if (p.committedOffset > 0n) sum += Number(p.committedOffset)
    return sum
  }

  /**
   * Partitions of `topic` whose last stable offset (what read_committed readers reach) is below
   * the high watermark: a transaction there is still open.
   */
  async openTransactions(topic: string): Promise<{ partition: number; lastStable: number; highWatermark: number }[]> {
    const metadata = await this.#admin.metadata({ topics: [topic] })
    const partitions = Array.from({ length: metadata.topics.get(topic)?.partitionsCount ?? 0 }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n }))
    const [stable] = await this.#admin.listOffsets({ topics: [{ name: topic, partitions }], isolationLevel: FetchIsolationLevels.READ_COMMITTED })
    const [high] = await this.#admin.listOffsets({ topics: [{ name: topic, partitions }], isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED })
    const open: { partition: number; lastStable: number; highWatermark: number }[] = []
    for (const p of stable?.partitions ?? []) {
      const hw = Number(high?.partitions.find((h) => h.partitionIndex === p.partitionIndex)?.offset ?? 0n)
      if (Number(p.offset) < hw) open.push({ partition: p.partitionIndex, lastStable: Number(p.offset), highWatermark: hw })
    }
    return open
  }

  async close(): Promise<void> {
    await this.#admin.close().catch(() => {})
  }
}
