import type { Admin } from '@platformatic/kafka'

/** `/api/kafka`: the topics with their end offsets, and every consumer group's lag. */
export interface KafkaOverview {
  topics: {
    name: string
    partitions: { partition: number; leader: number; start_offset: number; end_offset: number }[]
    /** records currently retained, over all partitions */
    records: number
  }[]
  groups: {
    group_id: string
    state: string
    lag: number
    partitions: { topic: string; partition: number; committed: number; end_offset: number; lag: number }[]
  }[]
  updated_at: string
}

const LATEST = -1n
const EARLIEST = -2n

async function offsetsAt(admin: Admin, topics: Map<string, number[]>, timestamp: bigint): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  if (topics.size === 0) return out
  const listed = await admin.listOffsets({
    topics: [...topics].map(([name, partitions]) => ({ name, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) })),
  })
  for (const topic of listed) for (const p of topic.partitions) out.set(`${topic.name}\0${p.partitionIndex}`, Number(p.offset))
  return out
}

/**
 * Reads the cluster through the Admin API. `hideGroup` leaves out groups that are not worth
 * showing (the dashboards' own live feeds).
 */
export async function kafkaOverview(admin: Admin, hideGroup: (groupId: string) => boolean = () => false): Promise<KafkaOverview> {
  const names = (await admin.listTopics()).filter((n) => !n.startsWith('__')).sort()
  const metadata = names.length > 0 ? await admin.metadata({ topics: names, forceUpdate: true }) : undefined
  const partitionsOf = new Map<string, number[]>()
  const leaders = new Map<string, number>()
  for (const name of names) {
    const topic = metadata?.topics.get(name)
    if (!topic) continue
    partitionsOf.set(name, topic.partitions.map((_, i) => i))
    topic.partitions.forEach((p, i) => leaders.set(`${name}\0${i}`, p.leader))
  }
  const [ends, starts] = await Promise.all([offsetsAt(admin, partitionsOf, LATEST), offsetsAt(admin, partitionsOf, EARLIEST)])
  const topics = [...partitionsOf].map(([name, partitions]) => {
    const rows = partitions.map((partition) => {
      const key = `${name}\0${partition}`
      return { partition, leader: leaders.get(key) ?? -1, start_offset: starts.get(key) ?? 0, end_offset: ends.get(key) ?? 0 }
    })
    return { name, partitions: rows, records: rows.reduce((s, p) => s + Math.max(0, p.end_offset - p.start_offset), 0) }
  })

  const groupList = [...(await admin.listGroups()).values()].filter((g) => !hideGroup(g.id))
  const committed = groupList.length > 0 ? await admin.listConsumerGroupOffsets({ groups: groupList.map((g) => g.id) }) : []
  const groups = groupList.map((g) => {
    const offsets = committed.find((c) => c.groupId === g.id)
    const partitions = (offsets?.topics ?? []).flatMap((t) =>
      t.partitions
        .filter((p) => p.committedOffset >= 0n && ends.has(`${t.name}\0${p.partitionIndex}`))
        .map((p) => {
          const end = ends.get(`${t.name}\0${p.partitionIndex}`)!
          const at = Number(p.committedOffset)
          return { topic: t.name, partition: p.partitionIndex, committed: at, end_offset: end, lag: Math.max(0, end - at) }
        }),
    )
    partitions.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)
    return { group_id: g.id, state: String(g.state), lag: partitions.reduce((s, p) => s + p.lag, 0), partitions }
  })
  groups.sort((a, b) => a.group_id.localeCompare(b.group_id))
  return { topics, groups, updated_at: new Date().toISOString() }
}

/** Throws unless a broker answers a metadata request. */
export async function brokerReachable(admin: Admin): Promise<void> {
  await admin.metadata({ topics: [], forceUpdate: true })
}
