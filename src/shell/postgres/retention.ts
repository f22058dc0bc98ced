import type { Logger } from '../log.ts'
import { sleep } from '../backoff.ts'
import { formatDuration } from '../duration.ts'
import { describe } from '../kafka/connection-errors.ts'

export interface RetentionOptions {
  /** the rows it deletes, for the log line ("row(s)", "login_activity row(s)") */
  what: string
  retentionMs: number
  everyMs: number
  log: Logger
  signal: AbortSignal
}

/**
 * A sink's retention: `deleteExpired` every `everyMs` until the signal stops it. A failed delete
 * is logged and tried again at the next turn; the sink goes on writing meanwhile.
 */
export async function runRetention(deleteExpired: () => Promise<number>, options: RetentionOptions): Promise<void> {
  const { what, retentionMs, everyMs, log, signal } = options
  while (!signal.aborted) {
    try {
      const deleted = await deleteExpired()
      if (deleted > 0) log.info(`retention: ${deleted} ${what} older than ${formatDuration(retentionMs)} deleted`)
    } catch (error) {
      log.warn({ err: error }, `retention delete failed (${describe(error)}); trying again in ${formatDuration(everyMs)}`)
    }
    await sleep(everyMs, signal)
  }
}
