import { SetupError, UserError } from '../../shell/errors.ts'
import type { SourceCoordinates } from '../core/error-record.ts'
import type { LoginRules } from '../core/login-event.ts'
import { coordinatesText, decodeParked, type ParkedInput } from './parked-record.ts'
import { planReplay, replayOutput, selects, type OriginalLookup } from './replay-plan.ts'
import { eventPreview, formatDryRun, maskedPreview, predictOutcome, ReplayTally } from './replay-report.ts'
import type { ReplayRequest } from './replay-request.ts'

/** A record of the parking topic with its key (the error record's key is the user id when known). */
export interface ParkedConsumed extends ParkedInput {
  key?: Buffer | null
}

export type ReplayCopy = ReturnType<typeof replayOutput>

/** Where a partition of the parking topic is: the next offset to look at. */
export interface PartitionPosition {
  partition: number
  next: bigint
}

/**
 * Everything a replay needs from Kafka (implemented in replay-kafka.ts). The exactly-once
 * contract: `commit` writes the copies and the new positions in one transaction, and
 * `positions` returns the positions the last committed transaction left, after fencing any
 * earlier process of the same replay.
 */
export interface ReplayIo {
  topicExists(topic: string): Promise<boolean>
  /** fences earlier runs of this replay (their open transaction is aborted) and returns where the replay stands, per partition */
  positions(): Promise<{ positions: PartitionPosition[]; handledBefore: number }>
  /** hands over the parking topic from `positions` to its end as it is now, batch by batch, until `onBatch` returns false */
  read(positions: PartitionPosition[], onBatch: (batch: ParkedConsumed[]) => Promise<boolean>): Promise<void>
  /** the original input records at these coordinates, or that they are gone */
  originals(coordinates: SourceCoordinates[]): Promise<Map<string, OriginalLookup>>
  /** the copies and the new positions, in one Kafka transaction */
  commit(copies: ReplayCopy[], positions: PartitionPosition[]): Promise<void>
}

export interface ReplayRunOptions {
  request: ReplayRequest
  io: ReplayIo
  /** the rules of this shell, to tell what the bytes would become (dry run) */
  rules: LoginRules
  hashKey?: string
  signal: AbortSignal
  onProgress?: (tally: ReplayTally) => void
  now?: () => number
}

export interface ReplayResult {
  tally: ReplayTally
  /** records of the parking topic handled by earlier runs of the same replay */
  handledBefore: number
  /** the dry-run report */
  report?: string
  stopped: boolean
}

/**
 * A run of a named replay: read the parking topic from where the replay stands, select,
 * find each original, and write the copies with the new position in one transaction per
 * batch. A stop (Ctrl-C) lets the batch in flight commit. A dry run reads and reports only.
 */
export async function runReplay(options: ReplayRunOptions): Promise<ReplayResult> {
  const { request, io, signal } = options
  const now = options.now ?? Date.now
  if (!(await io.topicExists(request.topic))) {
    throw new SetupError(`topic ${request.topic} does not exist: nothing has been parked there yet, or it has another name (TOPIC_ERRORS, TOPIC_CLEANED)`)
  }
  if (!request.dryRun && !(await io.topicExists(request.target))) {
    throw request.targetGiven
      ? new UserError(`--to ${request.target}: no such topic; create it first, or name an existing one`)
      : new SetupError(`topic ${request.target} (TOPIC_LOGINS) does not exist: create it (kpipe topics create) or send elsewhere with --to`)
  }
  const { positions, handledBefore } = await io.positions()
  const tally = new ReplayTally()
  let stopped = false
  const at = new Map(positions.map((p) => [p.partition, p.next]))

  await io.read(positions, async (batch) => {
    const handled: ParkedConsumed[] = []
    const chosen: { record: ParkedConsumed; parked: ReturnType<typeof decodeParked> }[] = []
    let limitReached = false
    for (const record of batch) {
      if (request.limit !== undefined && tally.selected + chosen.length >= request.limit) {
        limitReached = true
        break
      }
      const parked = decodeParked(request.role, record)
      handled.push(record)
      if (selects(request, parked)) chosen.push({ record, parked })
      else tally.skip(parked)
    }
    const lookups = await io.originals(chosen.flatMap(({ parked }) => (parked.source ? [parked.source] : [])))
    const copies: ReplayCopy[] = []
    const nowMs = now()
    for (const { record, parked } of chosen) {
      const step = planReplay(request.id, parked, parked.source ? lookups.get(coordinatesText(parked.source)) : undefined, record.key ?? undefined)
      const preview = request.dryRun
        ? () => {
            if (step.kind === 'send') return { text: maskedPreview(step.value, options.hashKey), outcome: predictOutcome(step.value, nowMs, options.rules) }
            return { text: parked.event !== undefined ? eventPreview(parked.event) : maskedPreview(parked.raw, options.hashKey) }
          }
        : undefined
      tally.add(parked, step, preview)
      if (step.kind === 'send') copies.push(replayOutput(request.target, request.id, step))
    }
    const advanced: PartitionPosition[] = []
    for (const record of handled) at.set(record.partition, record.offset + 1n)
    for (const partition of new Set(handled.map((r) => r.partition))) advanced.push({ partition, next: at.get(partition)! })
    if (!request.dryRun && advanced.length > 0) {
      await io.commit(copies, advanced)
      tally.sent += copies.length
    }
    options.onProgress?.(tally)
    if (signal.aborted) stopped = true
    return !limitReached && !signal.aborted
  })
  const result: ReplayResult = { tally, handledBefore, stopped }
  if (request.dryRun) result.report = formatDryRun(request, tally, handledBefore)
  return result
}

/**
 * The outcome of a run as the command ends it: one line, and an error when nothing was sent
 * for a reason the user must know (an empty selection, originals that are gone).
 */
export function replayVerdict(request: ReplayRequest, result: ReplayResult): { error?: string } {
  const { tally, handledBefore } = result
  if (result.stopped) return {}
  if (tally.selected === 0) {
    if (handledBefore > 0) return {}
    const filters = request.categories.length ? ` of ${request.role === 'errors' ? 'error type' : 'reason'} ${request.categories.join(', ')}` : ''
    const window = request.sinceMs !== undefined || request.untilMs !== undefined ? ' written in the given time range' : ''
    return { error: `empty selection: no record of ${request.topic}${filters}${window} (${tally.scanned} records looked at); nothing to replay` }
  }
  const sendable = tally.selected - tally.unavailable
  if (sendable === 0) {
    return {
      error: request.role === 'cleaned'
        ? `the originals of all ${tally.selected} selected records are gone from their source topic (retention); cleaned-data holds pseudonymised events only, which are never replayed: nothing sent`
        : `all ${tally.selected} selected error records are unavailable: their originals are gone (retention) and their payloads were too large to keep: nothing sent`,
    }
  }
  return {}
}
