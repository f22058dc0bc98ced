import type { Database } from '../../shell/postgres/database.ts'
import { createTablesIdempotently } from '../../shell/postgres/create-tables.ts'
import type { ActivityRow } from './login-activity.ts'

/**
 * `login_activity` of SPEC.md, and `kpipe_offsets`: where each consumer of the login outputs
 * is, per partition, kept in the same database and written in the same transaction as the
 * counts, so that counts and positions can never disagree (docs/logins.md).
 */
export const LOGIN_ACTIVITY_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS login_activity (
  minute timestamptz NOT NULL, outcome text NOT NULL,
  device_type text NOT NULL, locale text NOT NULL, app_version text NOT NULL,
  logins bigint NOT NULL,
  PRIMARY KEY (minute, outcome, device_type, locale, app_version))`,
  `CREATE TABLE IF NOT EXISTS kpipe_offsets (
  consumer text NOT NULL, topic text NOT NULL, partition integer NOT NULL,
  next_offset bigint NOT NULL,
  PRIMARY KEY (consumer, topic, partition))`,
]

/** Creates both tables; several sinks starting at once all succeed. */
export async function ensureLoginActivityTables(db: Pick<Database, 'transaction'>): Promise<void> {
  await createTablesIdempotently(db, LOGIN_ACTIVITY_SCHEMA)
}

export interface TopicPartition {
  topic: string
  partition: number
}

/** A partition's move in one batch: from the position this writer read or wrote last, to the next offset after the batch. */
export interface OffsetAdvance extends TopicPartition {
  /** the stored next offset this writer started from; null when none was stored */
  expected: bigint | null
  next: bigint
}

/**
 * Another writer moved a partition since this one read its position (the partition went to
 * another sink in a rebalance, and that one committed first): the batch is rolled back, and the
 * writer must read the stored positions again and seek there.
 */
export class StaleOffsetsError extends Error {
  override name = 'StaleOffsetsError'
  constructor(readonly consumer: string, readonly partitions: TopicPartition[]) {
    super(`the stored offsets of ${consumer} moved under this writer (${partitions.map((p) => `${p.topic}/${p.partition}`).join(', ')}); the batch was rolled back`)
  }
}

/**
 * Moves every partition from `expected` to `next` only if it is still at `expected`, in one
 * statement. A concurrent writer of the same row waits for the first one's commit and then
 * re-checks the condition against the committed value (PostgreSQL's READ COMMITTED re-check of
 * an updated row), so of two writers from the same position exactly one wins. A partition seen
 * for the first time is inserted; a row inserted meanwhile by someone else counts as a conflict.
 */
const ADVANCE_OFFSETS = `WITH advance AS (
  SELECT * FROM unnest($2::text[], $3::integer[], $4::bigint[], $5::bigint[]) AS a(topic, partition, expected, next)),
moved AS (
  UPDATE kpipe_offsets o SET next_offset = a.next FROM advance a
  WHERE o.consumer = $1 AND o.topic = a.topic AND o.partition = a.partition AND a.expected IS NOT NULL AND o.next_offset = a.expected
  RETURNING o.topic, o.partition),
created AS (
  INSERT INTO kpipe_offsets (consumer, topic, partition, next_offset)
  SELECT $1, a.topic, a.partition, a.next FROM advance a WHERE a.expected IS NULL
  ON CONFLICT (consumer, topic, partition) DO NOTHING
  RETURNING topic, partition)
SELECT topic, partition FROM moved UNION ALL SELECT topic, partition FROM created`

/**
 * One statement for all the rows of a batch (arrays unnested into rows; a batch's rows are
 * distinct keys, as ON CONFLICT DO UPDATE requires): late events simply add to their minute.
 */
const UPSERT_ACTIVITY = `INSERT INTO login_activity (minute, outcome, device_type, locale, app_version, logins)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
ON CONFLICT (minute, outcome, device_type, locale, app_version) DO UPDATE SET logins = login_activity.logins + EXCLUDED.logins`

/**
 * A batch's counts and its partitions' next offsets, in one transaction: both or neither.
 * Throws StaleOffsetsError (nothing written) when a partition is no longer where `expected` says.
 * Offsets first: a stale writer fails before it takes any lock on the counts.
 */
export async function writeActivityBatch(db: Pick<Database, 'transaction'>, consumer: string, rows: readonly ActivityRow[], offsets: readonly OffsetAdvance[]): Promise<void> {
  const advances = [...offsets].sort(byPartition)
  await db.transaction(async (tx) => {
    if (advances.length > 0) {
      const { rows: moved } = await tx.query<{ topic: string; partition: number }>(ADVANCE_OFFSETS, [
        consumer,
        arrayLiteral(advances.map((a) => quoteElement(a.topic))),
        arrayLiteral(advances.map((a) => String(a.partition))),
        arrayLiteral(advances.map((a) => (a.expected === null ? 'NULL' : a.expected.toString()))),
        arrayLiteral(advances.map((a) => a.next.toString())),
      ])
      if (moved.length !== advances.length) {
        const done = new Set(moved.map((m) => `${m.topic}\0${m.partition}`))
        throw new StaleOffsetsError(consumer, advances.filter((a) => !done.has(`${a.topic}\0${a.partition}`)).map(({ topic, partition }) => ({ topic, partition })))
      }
    }
    if (rows.length > 0) {
      await tx.query(UPSERT_ACTIVITY, [
        arrayLiteral(rows.map((r) => new Date(r.minute).toISOString())),
        arrayLiteral(rows.map((r) => quoteElement(r.outcome))),
        arrayLiteral(rows.map((r) => quoteElement(r.deviceType))),
        arrayLiteral(rows.map((r) => quoteElement(r.locale))),
        arrayLiteral(rows.map((r) => quoteElement(r.appVersion))),
        arrayLiteral(rows.map((r) => String(r.logins))),
      ])
    }
  })
}

/** The stored next offsets of `consumer` for these partitions; a partition without one is absent from the map (key `topic\0partition`). */
export async function readStoredOffsets(db: Pick<Database, 'query'>, consumer: string, partitions: readonly TopicPartition[]): Promise<Map<string, bigint>> {
  const stored = new Map<string, bigint>()
  if (partitions.length === 0) return stored
  const { rows } = await db.query<{ topic: string; partition: number; next_offset: string }>(
    `SELECT o.topic, o.partition, o.next_offset::text AS next_offset FROM kpipe_offsets o
JOIN unnest($2::text[], $3::integer[]) AS p(topic, partition) ON o.topic = p.topic AND o.partition = p.partition
WHERE o.consumer = $1`,
    [consumer, arrayLiteral(partitions.map((p) => quoteElement(p.topic))), arrayLiteral(partitions.map((p) => String(p.partition)))],
  )
  for (const row of rows) stored.set(partitionKey(row), BigInt(row.next_offset))
  return stored
}

export function partitionKey(p: TopicPartition): string {
  return `${p.topic}\0${p.partition}`
}

/** Deletes the minutes older than the retention; returns how many rows went. */
export async function deleteExpiredActivity(db: Pick<Database, 'query'>, retentionMs: number, now = Date.now()): Promise<number> {
  const result = await db.query('DELETE FROM login_activity WHERE minute < $1::timestamptz', [new Date(now - retentionMs).toISOString()])
  return result.rowCount
}

function byPartition(a: TopicPartition, b: TopicPartition): number {
  return a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition
}

function arrayLiteral(elements: string[]): string {
  return `{${elements.join(',')}}`
}

/** An element of a PostgreSQL array literal, always quoted (so '' and 'NULL' stay text): `"` and `\` escaped. */
function quoteElement(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&')}"`
}
