import { Admin } from '@platformatic/kafka'
import { clientOptions, type KafkaConnection } from '../shell/kafka/connection.ts'
import { ensureTopics } from '../shell/kafka/topics.ts'

/**
 * What the bench asks the broker while a part runs: how far a group has committed and where a
 * topic ends. A part is done with its input when its group's committed offsets reach the input's
 * end offsets: the loop commits only after the outputs are acknowledged (or, exactly-once, in
 * the same transaction), so that moment is the last output's.
 */
export class KafkaProbe {
  readonly #admin: Admin
  readonly #connection: KafkaConnection

  constructor(connection: KafkaConnection) {
    this.#connection = connection
    this.#admin = new Admin(clientOptions(connection, `${connection.clientId}-probe`))
  }

  async createTopics(names: string[], partitions = 3): Promise<void> {
    await ensureTopics(this.#connection, names.map((name) => ({ name, partitions, replicationFactor: -1 })))
  }

  async deleteTopics(names: string[]): Promise<void> {
    const existing = new Set(await this.#admin.listTopics())
    const doomed = names.filter((n) => existing.has(n))
    if (doomed.length > 0) await this.#admin.deleteTopics({ topics: doomed })
  }

  /** Sum of the end offsets of a topic's partitions. */
  async endOffset(topic: string): Promise<number> {
    const metadata = await this.#admin.metadata({ topics: [topic] })
    const partitions = metadata.topics.get(topic)?.partitionsCount ?? 0
    const listed = await this.#admin.listOffsets({
      topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, i) => ({ partitionIndex: i, timestamp: -1n })) }],
    })
    let sum = 0
    for (const t of listed) for (const p of t.partitions) sum += Number(p.offset)
    return sum
  }

  /** Sum of a group's committed offsets on a topic (0 where it has committed nothing). */
  async committed(groupId: string, topic: string): Promise<number> {
    const groups = await this.#admin.listConsumerGroupOffsets({ groups: [groupId] })
    let sum = 0
    for (const g of groups) {
      for (const t of g.topics) {
        if (t.name !== topic) continue
        for (const p of t.partitions) if (p.committedOffset > 0n) sum += Number(p.committedOffset)
      }
    }
    return sum
  }

  async close(): Promise<void> {
    await this.#admin.close().catch(() => {})
  }
}
