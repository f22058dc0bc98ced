import { describe, expect, inject, it } from 'vitest'
import { openPostgres, type Database } from '../../shell/postgres/database.ts'
import type { ConsumedRecord } from '../../shell/kafka/records.ts'
import { createTestDatabase } from '../../../test/support/host-metrics.ts'
import { withPglite } from '../../../test/support/pglite.ts'
import { ensurePerformanceTable } from './performance-table.ts'
import { isDatabaseUnavailable, SINK_SLICE, SLICES_IN_FLIGHT, sinkHandler } from './sink-handler.ts'
import { freePort } from '../../shell/broker/local-broker.ts'

const TOPIC = 'performance'
const ROWS = 2 * SINK_SLICE + 500
/** a record of the batch: offset i, a sample of its own unless `value` says otherwise */
const record = (i: number, value?: string | Buffer): ConsumedRecord => ({
  topic: TOPIC, partition: 0, offset: BigInt(i), key: Buffer.from('slice-host'), headers: new Map(),
  value: Buffer.from(value ?? JSON.stringify({ host: 'slice-host', time: new Date(Date.UTC(2026, 0, 1) + i).toISOString(), cpu_usage: 1, bytes_sent: i })),
} as unknown as ConsumedRecord)

/** bad records in the first slice and the last, a row the database refuses (a NUL in its host) in the middle one */
const BAD = new Map<number, { value: string | Buffer; errorType: string }>([
  [3, { value: 'not a sample', errorType: 'invalid_json' }],
  [SINK_SLICE + 17, { value: JSON.stringify({ host: 'nul\u0000host', time: new Date(Date.UTC(2026, 0, 1)).toISOString(), cpu_usage: 1 }), errorType: 'rejected_by_database' }],
  [2 * SINK_SLICE + 1, { value: Buffer.from([0xff, 0xfe]), errorType: 'invalid_encoding' }],
  [ROWS - 1, { value: JSON.stringify({ time: 'yesterday' }), errorType: 'invalid_sample' }],
])

async function writesEverySliceOnce(db: Database) {
  await ensurePerformanceTable(db)
  const batch = Array.from({ length: ROWS }, (_, i) => record(i, BAD.get(i)?.value))
  const handle = sinkHandler({ db, errorsTopic: 'performance-errors' })
  const errors = await handle(batch, { attempt: 0 })
  // every bad record is an error record, in the batch's order, with its source; every other record is a row
  const described = errors.map((e) => JSON.parse(String(e.value)) as { error_type: string; source_offset: string })
  expect(described.map((e) => [Number(e.source_offset), e.error_type])).toEqual([...BAD].map(([i, bad]) => [i, bad.errorType]))
  const count = async () => (await db.query<{ n: number; sent: string }>(`SELECT count(*)::int AS n, sum(bytes_sent)::text AS sent FROM performance WHERE host = 'slice-host'`)).rows[0]!
  const good = [...Array(ROWS).keys()].filter((i) => !BAD.has(i))
  expect(await count()).toEqual({ n: good.length, sent: String(good.reduce((a, b) => a + b, 0)) })
  // the same batch again (a retry after a failure): the same errors, no row twice
  expect((await handle(batch, { attempt: 1 })).map((e) => String(e.value))).toEqual(errors.map((e) => String(e.value)))
  expect((await count()).n).toBe(good.length)
}

describe('the sink writes a batch in slices', () => {
  it(`PostgreSQL: ${ROWS} records in slices of ${SINK_SLICE}, bad ones routed in order from every slice, a retried batch stored once`, async () => {
    const database = await createTestDatabase(inject('postgresUrl'))
    const db = openPostgres(database.url)
    try {
      await writesEverySliceOnce(db)
    } finally {
      await db.close()
      await database.drop()
    }
  })

  it('PGlite: the same', async () => {
    await withPglite(writesEverySliceOnce)
  })

  it('a PostgreSQL that refuses connections: the batch of five slices fails with the error the loop retries, once the slices sent have settled', async () => {
    const db = openPostgres(`postgres://kpipe@127.0.0.1:${await freePort()}/kpipe`)
    let sent = 0
    let settled = 0
    const counted = {
      query: db.query,
      copyRows: (...args: Parameters<Database['copyRows']>) => {
        sent++
        return db.copyRows(...args).finally(() => settled++)
      },
    }
    try {
      const batch = Array.from({ length: 5 * SINK_SLICE }, (_, i) => record(i))
      // a slice that fails while the next is decoded must not be an unhandled rejection (vitest fails the run on one)
      const error = await Promise.resolve(sinkHandler({ db: counted, errorsTopic: 'performance-errors' })(batch, { attempt: 0 })).then(() => undefined, (e: unknown) => e)
      expect(isDatabaseUnavailable(error), String(error)).toBe(true)
      expect(sent).toBeGreaterThan(0)
      expect(settled).toBe(sent)
    } finally {
      await db.close()
    }
  })

  it(`writes at most ${SLICES_IN_FLIGHT} slices at once, below the pool's connections`, async () => {
    const database = await createTestDatabase(inject('postgresUrl'))
    const db = openPostgres(database.url)
    let writing = 0
    let most = 0
    const counted = {
      query: db.query,
      copyRows: async (...args: Parameters<Database['copyRows']>) => {
        most = Math.max(most, ++writing)
        try {
          return await db.copyRows(...args)
        } finally {
          writing--
        }
      },
    }
    try {
      await ensurePerformanceTable(db)
      const batch = Array.from({ length: 6 * SINK_SLICE }, (_, i) => record(i))
      expect(await sinkHandler({ db: counted, errorsTopic: 'performance-errors' })(batch, { attempt: 0 })).toEqual([])
      expect(most).toBeLessThanOrEqual(SLICES_IN_FLIGHT)
      expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM performance')).rows[0]!.n).toBe(batch.length)
    } finally {
      await db.close()
      await database.drop()
    }
  })
})
