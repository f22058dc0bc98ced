import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPglite, type Database } from '../../shell/postgres/database.ts'
import { ensureLoginActivityTables, writeActivityBatch } from './activity-table.ts'
import { ActivityWriter, type PositionedRecord } from './activity-writer.ts'
import type { OutputTopic } from './login-activity.ts'

const topicOf = (topic: string): OutputTopic | undefined => (topic === 'processed-output' ? 'processed' : topic === 'cleaned-data' ? 'cleaned' : undefined)
const TS = BigInt(Date.parse('2026-12-04T10:00:30Z'))
const record = (partition: number, offset: number, locale = 'RU', topic = 'processed-output'): PositionedRecord => ({
  topic, partition, offset: BigInt(offset), timestamp: TS,
  value: Buffer.from(JSON.stringify({ device_type: 'android', locale, app_version: '2.3.0', timestamp: 1796378400 })),
})
const range = (partition: number, from: number, to: number) => Array.from({ length: to - from }, (_, i) => record(partition, from + i))

describe('ActivityWriter (PGlite)', () => {
  let dir: string
  let db: Database
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kpipe-writer-'))
    db = await openPglite(join(dir, 'pg'))
    await ensureLoginActivityTables(db)
  })
  afterAll(async () => {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const total = async () => Number((await db.query<{ n: string | null }>('SELECT sum(logins)::text AS n FROM login_activity')).rows[0]!.n ?? 0)

  it('a batch delivered again counts once; an overlapping one counts only what is new', async () => {
    await db.query('DELETE FROM login_activity')
    const writer = new ActivityWriter(db, 'again', topicOf)
    expect(await writer.write(range(0, 0, 10))).toMatchObject({ counted: 10, skipped: 0, conflicts: 0 })
    expect(await writer.write(range(0, 0, 10))).toMatchObject({ counted: 0, skipped: 10 })
    expect(await writer.write(range(0, 5, 15))).toMatchObject({ counted: 5, skipped: 5 })
    expect(await total()).toBe(15)
    // a new writer of the same consumer (a restart) reads the stored position
    const restarted = new ActivityWriter(db, 'again', topicOf)
    expect(await restarted.write([...range(0, 0, 20), ...range(1, 0, 3)])).toMatchObject({ counted: 8, skipped: 15 })
    expect(await total()).toBe(23)
    expect(await restarted.storedOffsets([{ topic: 'processed-output', partition: 0 }, { topic: 'processed-output', partition: 2 }]))
      .toEqual(new Map([['processed-output\u00000', 20n]]))
  })

  it('gaps in the offsets (transaction markers, aborted records) are not a loss: the position moves past them', async () => {
    await db.query('DELETE FROM login_activity')
    const writer = new ActivityWriter(db, 'gaps', topicOf)
    await writer.write([record(0, 0), record(0, 1), record(0, 5)])
    expect(await writer.write([record(0, 5), record(0, 7)])).toMatchObject({ counted: 1, skipped: 1 })
    expect(await total()).toBe(4)
  })

  it('two sinks over one partition (the old owner\'s batch in flight during a rebalance): whoever commits second counts only the rest', async () => {
    await db.query('DELETE FROM login_activity')
    const oldOwner = new ActivityWriter(db, 'handover', topicOf)
    const newOwner = new ActivityWriter(db, 'handover', topicOf)
    await oldOwner.write(range(0, 0, 100))
    // the new owner starts from the stored 100 and commits 100..149
    expect(await newOwner.write(range(0, 100, 150))).toMatchObject({ counted: 50, conflicts: 0 })
    // the old owner's cached position is 100: its batch 100..199 loses at the database, then counts 150..199
    expect(await oldOwner.write(range(0, 100, 200))).toMatchObject({ counted: 50, skipped: 50, conflicts: 1 })
    // and the new owner, now behind, re-reads and skips what the old one counted
    expect(await newOwner.write(range(0, 150, 210))).toMatchObject({ counted: 10, skipped: 50, conflicts: 1 })
    expect(await total()).toBe(210)
  })

  it('a batch that fails at the database leaves the cached positions as they were', async () => {
    await db.query('DELETE FROM login_activity')
    const writer = new ActivityWriter(db, 'fails', topicOf)
    await writer.write(range(0, 0, 10))
    // someone else moves the offsets far ahead with a write the writer does not see
    await writeActivityBatch(db, 'fails', [], [{ topic: 'processed-output', partition: 0, expected: 10n, next: 1000n }])
    await expect(writer.write([record(0, 10, 'x', 'unknown-topic')])).rejects.toThrow(/unknown-topic/)
    expect(await writer.write(range(0, 10, 20))).toMatchObject({ counted: 0, skipped: 10, conflicts: 1 })
    expect(await total()).toBe(10)
  })
})
