import { z } from 'zod'
import { isOffsetText, isPartitionText, readLineage } from '../../record-formats.ts'
import type { SourceCoordinates } from '../core/error-record.ts'
import type { ParkedRole } from './replay-request.ts'

/** What a replay needs of one record of processed-errors or cleaned-data. */
export interface ParkedRecord {
  /** where the parked record itself is */
  at: SourceCoordinates
  /** when it was written (the record's timestamp), epoch ms */
  writtenMs: number
  /** error type or filter reason; `(unreadable)` when the value is not a record of the pipeline */
  category: string
  /** the input it was derived from, by its lineage; undefined when the record names none */
  source?: SourceCoordinates
  /** processed-errors only: the dead-letter copy of the input bytes; undefined when omitted or absent */
  raw?: Buffer
  /** processed-errors only: the payload was too large to be kept in the error record */
  rawOmitted?: boolean
  /** cleaned-data only: the pseudonymised event (shown by a dry run; never replayed) */
  event?: unknown
}

/** A consumed record as the decoder needs it (the shell's ConsumedRecord fits). */
export interface ParkedInput {
  topic: string
  partition: number
  offset: bigint
  timestamp: bigint
  value?: Buffer | null
  headers: Map<string, Buffer>
}

export const UNREADABLE = '(unreadable)'

const errorValue = z.object({
  error_type: z.string(),
  raw: z.string().nullable().optional(),
  raw_encoding: z.enum(['utf8', 'base64', 'omitted']).optional(),
})
/** read apart: a record whose `source` is malformed still has its type and payload */
const errorSource = z.object({ source: z.object({ topic: z.string(), partition: z.number().int().nonnegative(), offset: z.number().int().nonnegative() }) })

const cleanedValue = z.object({ reason: z.string(), event: z.unknown() })

/**
 * Reads a parked record: its category, its lineage (the headers, else the error record's
 * `source`), and for an error record the raw payload decoded back to the input's bytes.
 */
export function decodeParked(role: ParkedRole, record: ParkedInput): ParkedRecord {
  const parked: ParkedRecord = {
    at: { topic: record.topic, partition: record.partition, offset: record.offset },
    writtenMs: Number(record.timestamp),
    category: UNREADABLE,
  }
  const fromHeaders = readLineage(record.headers)
  if (fromHeaders) parked.source = fromHeaders
  let value: unknown
  try {
    value = record.value ? JSON.parse(record.value.toString('utf8')) : undefined
  } catch {
    return parked
  }
  if (role === 'errors') {
    const parsed = errorValue.safeParse(value)
    if (!parsed.success) return parked
    const v = parsed.data
    parked.category = v.error_type
    const named = parked.source ? undefined : errorSource.safeParse(value)
    if (named?.success) parked.source = { topic: named.data.source.topic, partition: named.data.source.partition, offset: BigInt(named.data.source.offset) }
    if (v.raw_encoding === 'omitted' || v.raw === null) parked.rawOmitted = true
    else if (typeof v.raw === 'string') parked.raw = v.raw_encoding === 'base64' ? Buffer.from(v.raw, 'base64') : Buffer.from(v.raw, 'utf8')
  } else {
    const parsed = cleanedValue.safeParse(value)
    if (!parsed.success) return parked
    parked.category = parsed.data.reason
    parked.event = parsed.data.event
  }
  return parked
}

export const coordinatesText = (c: SourceCoordinates) => `${c.topic}/${c.partition}/${c.offset}`

/** Parses `topic/partition/offset` (the `replay-of` header); the topic may itself contain slashes. */
export function parseCoordinates(text: string | undefined): SourceCoordinates | undefined {
  const match = text === undefined ? null : /^(.+)\/(\d+)\/(\d+)$/.exec(text)
  if (!match || !isPartitionText(match[2]!) || !isOffsetText(match[3]!)) return undefined
  return { topic: match[1]!, partition: Number(match[2]), offset: BigInt(match[3]!) }
}
