import { isUtf8 } from 'node:buffer'
import type { FailedLogin } from './login-event.ts'
import type { LoginErrorRecord } from '../../record-formats.ts'

export interface SourceCoordinates {
  topic: string
  partition: number
  offset: bigint
}

/**
 * Brokers refuse a record batch over `message.max.bytes` (1 MiB by default), and a refused
 * batch would be retried for ever: an error record stays under this, whatever its input.
 */
export const MAX_ERROR_RECORD_BYTES = 900 * 1024

/** A user id longer than this is no id: it is neither a key nor copied into the error record (the raw payload has it). */
export const MAX_ERROR_USER_ID_LENGTH = 1024

/** The user id an error record names and is keyed by: null when unknown or absurdly long. */
export function errorUserId(failure: FailedLogin): string | null {
  return failure.userId !== null && failure.userId.length <= MAX_ERROR_USER_ID_LENGTH ? failure.userId : null
}

/**
 * The `processed-errors` record of a failed event: what went wrong, where the input was, and
 * the raw payload (UTF-8 text, or base64 when it is not valid UTF-8) so that it can be replayed.
 * When the escaped text would not fit in MAX_ERROR_RECORD_BYTES the payload goes as base64
 * (4/3 of its size, never more); when even that does not fit, it is left out
 * (`raw_encoding: "omitted"`, `raw_bytes`): the source coordinates still find it in the input topic.
 */
export function errorRecord(failure: FailedLogin, raw: Buffer | undefined, source: SourceCoordinates, time: string): string {
  const record: Omit<LoginErrorRecord, 'time'> = {
    error_type: failure.errorType,
    error: failure.error,
    fields: failure.fields,
    user_id: errorUserId(failure),
    // an offset is below 2^63; as a JSON number it reads back exactly below 2^53, which Kafka offsets do not reach
    source: { topic: source.topic, partition: source.partition, offset: Number(source.offset) },
  }
  const withRaw = (payload: Pick<LoginErrorRecord, 'raw' | 'raw_encoding' | 'raw_bytes'>) => JSON.stringify({ ...record, ...payload, time } satisfies LoginErrorRecord)
  if (raw === undefined) return withRaw({ raw: '', raw_encoding: 'utf8' })
  // what the record takes without its payload, and room for the payload's own field names
  const budget = MAX_ERROR_RECORD_BYTES - Buffer.byteLength(withRaw({ raw: '', raw_encoding: 'utf8' })) - 64
  if (isUtf8(raw) && raw.length <= budget) {
    const text = raw.toString('utf8')
    // escaping can make the text up to 6 times larger: measured, not guessed
    if (Buffer.byteLength(JSON.stringify(text)) <= budget) return withRaw({ raw: text, raw_encoding: 'utf8' })
  }
  // base64 never needs escaping, and its size is known before it is built
  if (Math.ceil(raw.length / 3) * 4 + 2 <= budget) return withRaw({ raw: raw.toString('base64'), raw_encoding: 'base64' })
  return withRaw({ raw: null, raw_encoding: 'omitted', raw_bytes: raw.length })
}
