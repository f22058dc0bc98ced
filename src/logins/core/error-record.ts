import { isUtf8 } from 'node:buffer'
import type { FailedLogin } from './login-event.ts'

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
 * Its shape is `loginErrorRecordSchema` (src/record-formats.ts), checked by the tests; it is
 * built as text because it is on the processor's per-record path (measured: building an object
 * and stringifying it took 3 to 5 times as long).
 */
export function errorRecord(failure: FailedLogin, raw: Buffer | undefined, source: SourceCoordinates, time: string): string {
  const userId = errorUserId(failure)
  const head = `{"error_type":"${failure.errorType}","error":${JSON.stringify(failure.error)},"fields":${JSON.stringify(failure.fields)},` +
    `"user_id":${userId === null ? 'null' : JSON.stringify(userId)},` +
    `"source":{"topic":${JSON.stringify(source.topic)},"partition":${source.partition},"offset":${source.offset}},`
  const tail = `,"time":"${time}"}`
  const budget = MAX_ERROR_RECORD_BYTES - Buffer.byteLength(head) - tail.length - 64
  if (raw === undefined) return `${head}"raw":"","raw_encoding":"utf8"${tail}`
  // base64 never needs escaping, and its size is known before it is built
  const base64Size = Math.ceil(raw.length / 3) * 4 + 2
  if (isUtf8(raw) && raw.length <= budget) {
    const text = JSON.stringify(raw.toString('utf8'))
    if (Buffer.byteLength(text) <= budget) return `${head}"raw":${text},"raw_encoding":"utf8"${tail}`
  }
  if (base64Size <= budget) return `${head}"raw":"${raw.toString('base64')}","raw_encoding":"base64"${tail}`
  return `${head}"raw":null,"raw_encoding":"omitted","raw_bytes":${raw.length}${tail}`
}
