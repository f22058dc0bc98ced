import { UserError } from '../../shell/errors.ts'
import { parseDuration } from '../../shell/duration.ts'
import type { ErrorType, FilterReason } from '../core/login-event.ts'

export const ERROR_TYPES: readonly ErrorType[] = ['invalid_json', 'missing_fields', 'invalid_field']
export const FILTER_REASONS: readonly FilterReason[] = ['stale', 'app_version']

/** Which parking topic a replay reads: dead letters (error records) or filtered events. */
export type ParkedRole = 'errors' | 'cleaned'

/** The topic names a replay needs (the settings' names). */
export interface ReplayTopics {
  TOPIC_LOGINS: string
  TOPIC_ERRORS: string
  TOPIC_CLEANED: string
}

/** The flags of `kpipe logins replay` as commander hands them over. */
export interface ReplayFlags {
  from: string
  errorType?: string[]
  reason?: string[]
  since?: string
  until?: string
  limit?: number
  dryRun?: boolean
  to?: string
  id?: string
  batchSize?: number
}

/** A validated replay: what to read, what to select, where to send, and its name. */
export interface ReplayRequest {
  role: ParkedRole
  /** the topic read: TOPIC_ERRORS or TOPIC_CLEANED */
  topic: string
  /** error types (role errors) or filter reasons (role cleaned) selected; empty: all of them */
  categories: string[]
  /** write-time bounds, epoch ms, inclusive since, exclusive until */
  sinceMs?: number
  untilMs?: number
  /** at most this many selected records in this run */
  limit?: number
  dryRun: boolean
  /** where the copies go: TOPIC_LOGINS unless --to */
  target: string
  /** --to was given */
  targetGiven: boolean
  /** parked records handled per transaction */
  batchSize: number
  /** names the replay: its progress group and its transactional id derive from it */
  id: string
}

const ID_PATTERN = /^[A-Za-z0-9._+=-]{1,180}$/

/**
 * Validates the flags into a request. `now` resolves relative times (`2h` = two hours ago).
 * Every refusal is one line naming the flag, the value and what is expected.
 */
export function parseReplayRequest(flags: ReplayFlags, topics: ReplayTopics, now: number): ReplayRequest {
  const role = parkedRole(flags.from, topics)
  const types = flags.errorType ?? []
  const reasons = flags.reason ?? []
  if (role === 'errors' && reasons.length > 0) {
    throw new UserError(`--reason selects filtered events of ${topics.TOPIC_CLEANED}; ${topics.TOPIC_ERRORS} is selected by --error-type (${ERROR_TYPES.join(', ')})`)
  }
  if (role === 'cleaned' && types.length > 0) {
    throw new UserError(`--error-type selects error records of ${topics.TOPIC_ERRORS}; ${topics.TOPIC_CLEANED} is selected by --reason (${FILTER_REASONS.join(', ')})`)
  }
  const known: readonly string[] = role === 'errors' ? ERROR_TYPES : FILTER_REASONS
  const flag = role === 'errors' ? '--error-type' : '--reason'
  const given = role === 'errors' ? types : reasons
  for (const category of given) {
    if (!known.includes(category)) throw new UserError(`unknown ${flag} ${JSON.stringify(category)}: expected one of ${known.join(', ')}`)
  }
  const categories = [...new Set(given)].sort()
  const sinceMs = flags.since === undefined ? undefined : parseTime('since', flags.since, now)
  const untilMs = flags.until === undefined ? undefined : parseTime('until', flags.until, now)
  if (sinceMs !== undefined && untilMs !== undefined && sinceMs >= untilMs) {
    throw new UserError(`--since ${flags.since} is not before --until ${flags.until}: the selection would be empty`)
  }
  if (flags.to !== undefined && !/^[A-Za-z0-9._-]{1,249}$/.test(flags.to)) {
    throw new UserError(`invalid value for --to: ${JSON.stringify(flags.to)}: expected a topic name (letters, digits, ".", "_" or "-")`)
  }
  if (flags.to === topics.TOPIC_ERRORS || flags.to === topics.TOPIC_CLEANED) {
    throw new UserError(`--to ${flags.to} is an output of the processor: replayed events go to its input (${topics.TOPIC_LOGINS}) or a topic of your own`)
  }
  if (flags.id !== undefined && !ID_PATTERN.test(flags.id)) {
    throw new UserError(`invalid value for --id: ${JSON.stringify(flags.id)}: expected 1 to 180 letters, digits, ".", "_", "+", "=" or "-"`)
  }
  const target = flags.to ?? topics.TOPIC_LOGINS
  const request: ReplayRequest = {
    role,
    topic: role === 'errors' ? topics.TOPIC_ERRORS : topics.TOPIC_CLEANED,
    categories,
    ...(sinceMs === undefined ? {} : { sinceMs }),
    ...(untilMs === undefined ? {} : { untilMs }),
    ...(flags.limit === undefined ? {} : { limit: flags.limit }),
    dryRun: flags.dryRun === true,
    target,
    targetGiven: flags.to !== undefined,
    batchSize: flags.batchSize ?? 500,
    id: flags.id ?? '',
  }
  request.id ||= derivedReplayId(role, categories, flags, target === topics.TOPIC_LOGINS ? undefined : target)
  return request
}

function parkedRole(from: string, topics: ReplayTopics): ParkedRole {
  if (from === 'processed-errors' || from === topics.TOPIC_ERRORS) return 'errors'
  if (from === 'cleaned-data' || from === topics.TOPIC_CLEANED) return 'cleaned'
  const names = [...new Set(['processed-errors', topics.TOPIC_ERRORS, 'cleaned-data', topics.TOPIC_CLEANED])]
  throw new UserError(`invalid value for --from: ${JSON.stringify(from)}: expected ${names.join(' or ')}`)
}

/**
 * The default name of a replay, from its filters as written (`--since 2h` stays `2h`, so the
 * same command run again later resumes the same replay instead of starting another).
 * `--limit` is not part of it: a run with a limit is continued by the next run.
 */
export function derivedReplayId(role: ParkedRole, categories: string[], flags: Pick<ReplayFlags, 'since' | 'until'>, to?: string): string {
  const parts = [role, categories.length > 0 ? categories.join('+') : 'all']
  if (flags.since !== undefined) parts.push(`since-${idSafe(flags.since)}`)
  if (flags.until !== undefined) parts.push(`until-${idSafe(flags.until)}`)
  if (to !== undefined) parts.push(`to-${to}`)
  return parts.join('-').slice(0, 180)
}

const idSafe = (text: string) => text.trim().replace(/[^A-Za-z0-9.+=-]/g, '_')

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/

/** `--since`/`--until`: ISO-8601 (a date, or a date and time; UTC unless a zone is given) or a time ago like `2h`, `30m`, `7d`. */
export function parseTime(flag: 'since' | 'until', text: string, now: number): number {
  const trimmed = text.trim()
  if (/^\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)$/.test(trimmed)) return now - parseDuration(trimmed)!
  if (ISO_8601.test(trimmed)) {
    // a time without a zone is read as UTC, like the pipeline's own times
    const zoned = /T|\s/.test(trimmed) && !/(?:Z|[+-]\d{2}:?\d{2})$/.test(trimmed) ? `${trimmed.replace(' ', 'T')}Z` : trimmed.replace(' ', 'T')
    const ms = Date.parse(zoned)
    if (Number.isFinite(ms)) return ms
  }
  throw new UserError(`invalid value for --${flag}: ${JSON.stringify(text)}: expected an ISO-8601 time (2026-12-01T08:00:00Z) or a time ago (30m, 2h, 7d)`)
}
