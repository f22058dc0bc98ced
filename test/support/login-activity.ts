import { Admin } from '@platformatic/kafka'
import type { Settings } from '../../src/shell/settings.ts'
import { clientOptions, kafkaConnection } from '../../src/shell/kafka/connection.ts'
import { readTopic } from '../../src/shell/kafka/topic-reader.ts'
import type { Database } from '../../src/shell/postgres/database.ts'

/**
 * Counts of login activity taken from the topics themselves, with a reader of their own (not
 * the sink's aggregation): per outcome, device type, locale and app version, and in all.
 */
export interface ActivityTally {
  total: number
  outcome: Record<string, number>
  device_type: Record<string, number>
  locale: Record<string, number>
  app_version: Record<string, number>
}

const emptyTally = (): ActivityTally => ({ total: 0, outcome: {}, device_type: {}, locale: {}, app_version: {} })

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1
}

const text = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v : '')

/** Reads the three outputs from the beginning (read_committed) and counts every record by what it says. */
export async function tallyTopics(settings: Settings): Promise<ActivityTally> {
  const tally = emptyTally()
  const connection = kafkaConnection(settings, 'test-tally')
  const add = (outcome: string, event: Record<string, unknown> | undefined) => {
    tally.total++
    bump(tally.outcome, outcome)
    bump(tally.device_type, text(event?.device_type))
    bump(tally.locale, text(event?.locale))
    bump(tally.app_version, text(event?.app_version))
  }
  await readTopic(connection, settings.TOPIC_PROCESSED, { from: 'earliest' }, (r) => {
    add('processed', JSON.parse(r.value!.toString()) as Record<string, unknown>)
  })
  await readTopic(connection, settings.TOPIC_CLEANED, { from: 'earliest' }, (r) => {
    const record = JSON.parse(r.value!.toString()) as { reason: string; event: Record<string, unknown> }
    add(`filtered:${record.reason}`, record.event)
  })
  await readTopic(connection, settings.TOPIC_ERRORS, { from: 'earliest' }, (r) => {
    const record = JSON.parse(r.value!.toString()) as { error_type: string; raw: string | null; raw_encoding: string }
    let event: Record<string, unknown> | undefined
    if (record.raw_encoding === 'utf8' && record.raw) {
      try {
        const parsed = JSON.parse(record.raw) as unknown
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) event = parsed as Record<string, unknown>
      } catch {
        // not JSON: nothing known of it
      }
    }
    add(`error:${record.error_type}`, event)
  })
  return tally
}

/** The same counts as the sink stored them in login_activity. */
export async function tallyTable(db: Pick<Database, 'query'>): Promise<ActivityTally> {
  const tally = emptyTally()
  for (const column of ['outcome', 'device_type', 'locale', 'app_version'] as const) {
    const { rows } = await db.query<{ key: string; n: string }>(`SELECT ${column} AS key, sum(logins)::text AS n FROM login_activity GROUP BY ${column}`)
    for (const row of rows) tally[column][row.key] = Number(row.n)
  }
  const { rows } = await db.query<{ n: string | null }>('SELECT sum(logins)::text AS n FROM login_activity')
  tally.total = Number(rows[0]!.n ?? 0)
  return tally
}

/** Sum of the stored next offsets of a sink (its position over every partition). */
export async function storedOffsetSum(db: Pick<Database, 'query'>, consumer: string): Promise<bigint> {
  const { rows } = await db.query<{ n: string | null }>('SELECT sum(next_offset)::text AS n FROM kpipe_offsets WHERE consumer = $1', [consumer]).catch(() => ({ rows: [{ n: null }] }))
  return BigInt(rows[0]!.n ?? 0)
}

/** How many members of a consumer group hold partitions, once the group is stable (0 while it rebalances). */
export async function activeMembers(settings: Settings, groupId: string): Promise<number> {
  const admin = new Admin(clientOptions(kafkaConnection(settings, 'test-group')))
  try {
    const group = (await admin.describeGroups({ groups: [groupId] })).get(groupId)
    if (!group || String(group.state).toUpperCase() !== 'STABLE') return 0
    return [...group.members.values()].filter((m) => (m.assignments?.size ?? 0) > 0).length
  } finally {
    await admin.close()
  }
}
