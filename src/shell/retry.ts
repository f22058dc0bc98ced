import type { Logger } from './log.ts'
import { backoffDelay, sleep } from './backoff.ts'
import { describe } from './kafka/connection-errors.ts'

/** Thrown when the signal stopped a wait: the caller stops cleanly (exit 0), it did not fail. */
export class StoppedWaiting extends Error {
  override name = 'StoppedWaiting'
  constructor(message: string, override readonly cause?: unknown) {
    super(message)
  }
}

export interface RetryPolicy {
  /** attempts in all, the first included (default: until it succeeds or the signal stops it) */
  attempts?: number
  /** the longest wait between two attempts (default 10 s) */
  maxDelayMs?: number
}

export interface RetryOptions extends RetryPolicy {
  /**
   * What failed, as the warning starts: "`what` (cause); retrying in 1.2 s". A function is
   * asked at each failure (e.g. to say how many samples are queued by then).
   */
  what: string | ((error: unknown) => string)
  log: Logger
  /** stops the waiting: the helper then throws StoppedWaiting */
  signal?: AbortSignal
  /** errors worth another attempt (default: every error); any other is thrown at once */
  retriable?: (error: unknown) => boolean
  /** what is thrown for an error that is not retriable (default: the error itself) */
  fatal?: (error: unknown) => unknown
  /** appended to the warning, e.g. ", nothing committed" */
  suffix?: string
}

export interface Attempt {
  /** 1 for the first attempt, 2 for the first retry, … */
  number: number
  /** the action made progress: the next failure waits as briefly as a first one */
  progressed(): void
}

/**
 * The one retry-with-backoff of kpipe: runs `action` until it succeeds, waiting with
 * exponential backoff and full jitter between failures (200 ms, 400 ms, … up to
 * `maxDelayMs`) and saying each time, in one warning, what failed, why, and when it is tried
 * again. An error that is not retriable is thrown at once; so is the last one when the
 * attempts run out. The first attempt is always made; once the signal has aborted, a failure
 * (or the wait after one) ends in StoppedWaiting instead of another attempt.
 */
export async function retryWithBackoff<T>(action: (attempt: Attempt) => Promise<T>, options: RetryOptions): Promise<T> {
  const { log, signal } = options
  let failures = 0
  const attempt: Attempt = {
    number: 1,
    progressed: () => {
      failures = 0
    },
  }
  for (;;) {
    try {
      return await action(attempt)
    } catch (error) {
      if (options.retriable && !options.retriable(error)) throw options.fatal ? options.fatal(error) : error
      if (signal?.aborted) throw new StoppedWaiting(`stopped while retrying: ${whatOf(options, error)}`, error)
      failures++
      if (options.attempts !== undefined && attempt.number >= options.attempts) throw error
      const delay = backoffDelay(failures, options.maxDelayMs)
      log.warn({ err: error, attempt: attempt.number }, retryMessage(whatOf(options, error), error, delay, options.suffix))
      await sleep(delay, signal)
      if (signal?.aborted) throw new StoppedWaiting(`stopped while retrying: ${whatOf(options, error)}`, error)
      attempt.number++
    }
  }
}

/** The warning of every retry: what failed, why, and when it is tried again. */
export function retryMessage(what: string, error: unknown, delayMs: number, suffix = ''): string {
  return `${what} (${describe(error)}); retrying in ${(delayMs / 1000).toFixed(1)} s${suffix}`
}

function whatOf(options: RetryOptions, error: unknown): string {
  return typeof options.what === 'function' ? options.what(error) : options.what
}
