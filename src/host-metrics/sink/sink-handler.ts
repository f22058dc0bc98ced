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
 * The sink as a handler of the consumer loop: decode the batch, write its rows in one
 * statement, and hand back the records that are not samples for `performance-errors`.
 * A database that is away makes it throw (the loop retries the same batch, committing
 * nothing); a row the database refuses is found by bisection and routed like a bad record.
 */
export function sinkHandler(options: SinkHandlerOptions): BatchHandler {
  return async (batch) => {
    const started = performance.now()
    const rows: { row: SampleRow; record: ConsumedRecord }[] = []
    const failures: SinkFailure[] = []
    for (const record of batch) {
      const decoded = decodeSample(record.value, record.key)
      if (decoded.ok) rows.push({ row: decoded.row, record })
      else failures.push({ record, errorType: decoded.errorType, error: decoded.error })
    }
    const written = await writeRows(options.db, rows, failures)
    sinkBatchSeconds.observe((performance.now() - started) / 1000)
    sinkRowsWritten.inc(written)
    return failures.map((f) => errorRecord(options.errorsTopic, f))
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
