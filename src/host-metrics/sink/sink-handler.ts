import { performance } from 'node:perf_hooks'
import type { Database } from '../../shell/postgres/database.ts'
import type { BatchHandler } from '../../shell/kafka/consumer-loop.ts'
import { lineageHeaders, type ConsumedRecord, type OutputRecord } from '../../shell/kafka/records.ts'
import { sinkBatchSeconds, sinkRowsWritten } from '../../shell/observability/prometheus.ts'
import { decodeSample, type SampleRow } from './decode.ts'
import { insertRows } from './performance-table.ts'
import type { SampleErrorRecord } from '../../record-formats.ts'

export interface SinkHandlerOptions {
  db: Pick<Database, 'query'>
  errorsTopic: string
}

export interface SinkFailure {
  record: ConsumedRecord
  errorType: string
  error: string
}

/**
 * Rows per statement within a batch. A batch is decoded and written in slices of this many rows:
 * while the database copies one slice (on a connection of the pool), the next is decoded here, so
 * the sink's CPU and the server's overlap instead of taking turns (docs/benchmarks.md, "The sink's
 * slices overlap").
 */
export const SINK_SLICE = 1000

/**
 * Slices written at once, at most: below the pool's four connections, so that the retention
 * delete and the readiness check still find one and no slice waits for a connection long enough
 * to time out.
 */
export const SLICES_IN_FLIGHT = 3

/** A slice's write; it never rejects (a failure is kept by the handler), so none is left unhandled while others run. */
type SliceWrite = Promise<void>

/**
 * The sink as a handler of the consumer loop: decode the batch, write its rows, and hand back the
 * records that are not samples for `performance-errors`. The rows go in slices of SINK_SLICE, one
 * statement each, written while the next slice is decoded; the handler returns when every slice
 * is in, so the loop commits the batch's offsets only then. A database that is away makes it throw
 * once the slices under way have settled, and no further slice is sent (the loop retries the same
 * batch, committing nothing; the slices already in are replayed through ON CONFLICT DO NOTHING);
 * a row the database refuses is found by bisection and routed like a bad record.
 */
export function sinkHandler(options: SinkHandlerOptions): BatchHandler {
  return async (batch) => {
    const started = performance.now()
    const slices: { writing: SliceWrite; failures: SinkFailure[] }[] = []
    // the first slice that failed: no further slice is sent, and the batch fails once the others settle
    let failure: { error: unknown } | undefined
    for (let from = 0, settled = 0; from < batch.length; from += SINK_SLICE) {
      if (slices.length - settled >= SLICES_IN_FLIGHT) await slices[settled++]!.writing
      // the writes under way send their rows and take their answers while the next slice waits
      else if (from > 0) await new Promise(setImmediate)
      if (failure !== undefined) break
      const rows: { row: SampleRow; record: ConsumedRecord }[] = []
      const failures: SinkFailure[] = []
      for (let i = from, end = Math.min(batch.length, from + SINK_SLICE); i < end; i++) {
        const record = batch[i]!
        const decoded = decodeSample(record.value, record.key)
        if (decoded.ok) rows.push({ row: decoded.row, record })
        else failures.push({ record, errorType: decoded.errorType, error: decoded.error })
      }
      const writing: SliceWrite = writeRows(options.db, rows, failures).then(
        // counted as each slice is in: a batch retried after a failure counts only the rows it adds
        (written) => void sinkRowsWritten.inc(written),
        (error: unknown) => void (failure ??= { error }),
      )
      slices.push({ writing, failures })
    }
    // every slice settled before the batch succeeds or fails: a retry never overlaps a write of its own
    for (const slice of slices) await slice.writing
    if (failure !== undefined) throw failure.error
    sinkBatchSeconds.observe((performance.now() - started) / 1000)
    // slice by slice, in the batch's order: a slice's undecodable records, then the rows the database refused
    return slices.flatMap((slice) => slice.failures.map((f) => errorRecord(options.errorsTopic, f)))
  }
}

async function writeRows(db: SinkHandlerOptions['db'], rows: { row: SampleRow; record: ConsumedRecord }[], failures: SinkFailure[]): Promise<number> {
  if (rows.length === 0) return 0
  try {
    return await insertRows(db, rows.map((r) => r.row))
  } catch (error) {
    if (!isRowRejected(error)) throw error
    if (rows.length === 1) {
      failures.push({ record: rows[0]!.record, errorType: 'rejected_by_database', error: (error as Error).message })
      return 0
    }
    const half = rows.length >> 1
    return (await writeRows(db, rows.slice(0, half), failures)) + (await writeRows(db, rows.slice(half), failures))
  }
}

/** SQLSTATE classes 22 (data exception) and 23 (integrity): the data, not the database, is at fault. */
function isRowRejected(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^2[23]/.test(code)
}

const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED'])

/**
 * Errors after which the same batch may succeed later: the server is unreachable, restarting,
 * out of connections or resources, or the transaction lost a race. Anything else (a wrong
 * schema, no permission) stops the sink rather than retrying forever.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnavailable)
  if (!error || typeof error !== 'object') return false
  const { code, message } = error as { code?: unknown; message?: unknown }
  if (typeof code === 'string') {
    if (UNAVAILABLE_ERRNO.has(code)) return true
    if (/^(08|53|57P0[123]|40001|40P01|55P03|57014)/.test(code)) return true
  }
  return typeof message === 'string' && /connection terminated|connection (error|refused|reset|closed)|timeout exceeded when trying to connect|not queryable|client was closed|the database system is (starting up|shutting down)/i.test(message)
}

function errorRecord(topic: string, failure: SinkFailure): OutputRecord {
  const { record } = failure
  const host = record.key && record.key.length > 0 ? record.key.toString('utf8') : undefined
  const raw = record.value ?? Buffer.alloc(0)
  const text = failure.errorType === 'invalid_encoding' ? undefined : raw.toString('utf8')
  const value: SampleErrorRecord = {
    error_type: failure.errorType,
    error: failure.error,
    host: host ?? null,
    source_topic: record.topic,
    source_partition: record.partition,
    source_offset: record.offset.toString(),
    // the dead-letter copy: replayable as it was received
    ...(text === undefined ? { raw_base64: raw.toString('base64') } : { raw: text }),
  }
  return { topic, ...(host === undefined ? {} : { key: host }), value: JSON.stringify(value), headers: lineageHeaders(record) }
}
