import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { SetupError } from '../shell/errors.ts'
import { isAlive } from '../shell/broker/local-broker.ts'

/** What a running `kpipe up` records in its data directory. */
export interface UpRecord {
  pid: number
  /** the dashboard, once it listens */
  url?: string
  /** the local broker this run started, and so must stop */
  brokerPid?: number
}

export function upRecordFile(dataDir: string): string {
  return join(resolve(dataDir), 'up.json')
}

function readRecord(file: string): UpRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as UpRecord
    return Number.isInteger(record.pid) && record.pid > 0 ? record : undefined
  } catch {
    return undefined
  }
}

export class UpAlreadyRunningError extends SetupError {
  override name = 'UpAlreadyRunningError'
  constructor(
    readonly record: UpRecord,
    dataDir: string,
  ) {
    super(
      `kpipe up is already running (pid ${record.pid})${record.url ? `, dashboard at ${record.url}` : ', still starting'}`,
      `use that one, or stop it first (Ctrl-C in its terminal, or kill ${record.pid}); a second stack needs another --data-dir than ${resolve(dataDir)}`,
    )
  }
}

/** One `kpipe up` per data directory, and what it started, so that the next one can tell its leftovers. */
export interface InstanceLock {
  /** the earlier run's record when that run ended without cleaning up (killed, crashed) */
  readonly previous: UpRecord | undefined
  update(fields: Omit<UpRecord, 'pid'>): void
  release(): void
}

/**
 * Claims `KPIPE_DATA_DIR/up.json` for this process, or throws UpAlreadyRunningError naming the
 * live owner and its dashboard. A record whose process is gone is taken over and returned as
 * `previous` (its broker, if still running, is a leftover this run should own).
 */
export function claimInstance(dataDir: string): InstanceLock {
  mkdirSync(resolve(dataDir), { recursive: true })
  const file = upRecordFile(dataDir)
  let previous: UpRecord | undefined
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, JSON.stringify({ pid: process.pid }), { flag: 'wx' })
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw error
      const holder = readRecord(file)
      if (holder && holder.pid !== process.pid && isAlive(holder.pid)) throw new UpAlreadyRunningError(holder, dataDir)
      previous ??= holder
      try {
        unlinkSync(file)
      } catch {
        // another run took over the stale record first; the next attempt says so
      }
    }
  }
  let record: UpRecord = { pid: process.pid }
  const release = () => {
    process.off('exit', release)
    if (readRecord(file)?.pid === process.pid) {
      try {
        unlinkSync(file)
      } catch {
        // already gone
      }
    }
  }
  process.on('exit', release)
  return {
    previous,
    update(fields) {
      record = { ...record, ...fields, pid: process.pid }
      const tmp = `${file}.${process.pid}.tmp`
      writeFileSync(tmp, JSON.stringify(record))
      renameSync(tmp, file)
    },
    release,
  }
}
