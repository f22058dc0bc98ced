import { isUtf8 } from 'node:buffer'
import type { FailedLogin } from './login-event.ts'

export interface SourceCoordinates {
  topic: string
  partition: number
  offset: bigint
}

/**
 * The `processed-errors` record of a failed event: what went wrong, where the input was, and
 * the raw payload (UTF-8 text, or base64 when it is not valid UTF-8) so that it can be replayed.
 */
export function errorRecord(failure: FailedLogin, raw: Buffer | undefined, source: SourceCoordinates, time: string): string {
  const utf8 = raw === undefined || isUtf8(raw)
  const text = raw === undefined ? '' : utf8 ? raw.toString('utf8') : raw.toString('base64')
  return `{"error_type":"${failure.errorType}","error":${JSON.stringify(failure.error)},"fields":${JSON.stringify(failure.fields)},` +
    `"user_id":${failure.userId === null ? 'null' : JSON.stringify(failure.userId)},` +
    `"source":{"topic":${JSON.stringify(source.topic)},"partition":${source.partition},"offset":${source.offset}},` +
    `"raw":${JSON.stringify(text)},"raw_encoding":"${utf8 ? 'utf8' : 'base64'}","time":"${time}"}`
}
