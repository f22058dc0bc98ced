import type { SourceCoordinates } from '../core/error-record.ts'
import { coordinatesText, parseCoordinates, UNREADABLE, type ParkedRecord } from './parked-record.ts'
import type { ReplayRequest } from './replay-request.ts'

export const REPLAY_OF = 'replay-of'
export const REPLAY_ID = 'replay-id'

/** The input record a parked record was derived from, as found in the source topic. */
export interface OriginalRecord {
  key?: Buffer | null
  value?: Buffer | null
  headers: Map<string, Buffer>
}

/**
 * What the source topic says about one original: found (its bytes), or gone (deleted by
 * retention, or the topic itself is gone).
 */
export type OriginalLookup = { found: true; record: OriginalRecord } | { found: false }

/** What a replay does with one selected record. */
export type ReplayStep =
  | {
      kind: 'send'
      /** the original input bytes, exactly as first written (undefined: the input had no value) */
      value: Buffer | undefined
      key: Buffer | undefined
      /** the very first input these bytes came from (a copy of a copy names the first) */
      replayOf: SourceCoordinates
      /** where the bytes came from: the source topic, or the error record's dead-letter copy */
      via: 'source' | 'raw'
    }
  | { kind: 'unavailable'; why: string }
  /** the parked record is the outcome of a copy this same replay sent: sending it again would loop */
  | { kind: 'own-copy' }

/** Is this parked record part of the selection (category and write time)? */
export function selects(request: Pick<ReplayRequest, 'categories' | 'sinceMs' | 'untilMs'>, parked: ParkedRecord): boolean {
  if (parked.category === UNREADABLE) return false
  if (request.categories.length > 0 && !request.categories.includes(parked.category)) return false
  if (request.sinceMs !== undefined && parked.writtenMs < request.sinceMs) return false
  if (request.untilMs !== undefined && parked.writtenMs >= request.untilMs) return false
  return true
}

/**
 * The step for one selected record: the original bytes from the source topic while they are
 * there; else, for an error record, its raw payload; a filtered event's own value is
 * pseudonymised and never replayed, so without its original it is unavailable.
 */
export function planReplay(replayId: string, parked: ParkedRecord, original: OriginalLookup | undefined, keyOfParked?: Buffer): ReplayStep {
  if (original?.found) {
    const { record } = original
    if (record.headers.get(REPLAY_ID)?.toString('utf8') === replayId) return { kind: 'own-copy' }
    const earlier = parseCoordinates(record.headers.get(REPLAY_OF)?.toString('utf8'))
    return { kind: 'send', value: record.value ?? undefined, key: record.key ?? undefined, replayOf: earlier ?? parked.source!, via: 'source' }
  }
  const gone = parked.source ? `${coordinatesText(parked.source)} is gone (retention)` : 'the record names no source offset'
  if (parked.raw !== undefined && parked.source) {
    return { kind: 'send', value: parked.raw, key: keyOfParked, replayOf: parked.source, via: 'raw' }
  }
  if (parked.raw !== undefined) return { kind: 'unavailable', why: `${gone}; replay-of needs the original's coordinates` }
  if (parked.rawOmitted) return { kind: 'unavailable', why: `${gone}, and the payload was too large to keep in the error record` }
  return { kind: 'unavailable', why: `${gone}; ${parked.event === undefined ? 'the error record has no payload' : 'cleaned-data holds the pseudonymised event only, which is never replayed'}` }
}

/** The copy a send step writes: the original's key and bytes, with `replay-of` and `replay-id`. */
export function replayOutput(target: string, replayId: string, step: Extract<ReplayStep, { kind: 'send' }>) {
  return {
    topic: target,
    ...(step.key === undefined ? {} : { key: step.key }),
    ...(step.value === undefined ? {} : { value: step.value }),
    headers: { [REPLAY_OF]: coordinatesText(step.replayOf), [REPLAY_ID]: replayId },
  }
}
