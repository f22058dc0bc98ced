import { statfsSync } from 'node:fs'
import { roundPercent } from './cpu.ts'

/** What `statfs` says about a filesystem (the fields kpipe uses of Node's StatFs). */
export interface FsStats {
  bsize: number
  blocks: number
  bfree: number
  bavail: number
}

/**
 * Percent used, as `df` and psutil compute it: used / (used + available to unprivileged
 * users), so blocks reserved for root count as neither. Null for filesystems without
 * blocks (procfs, some overlay and FUSE mounts report zeros) or with inconsistent numbers.
 */
export function diskUsage(stats: FsStats): number | null {
  const used = stats.blocks - stats.bfree
  const usable = used + stats.bavail
  if (!(stats.blocks > 0) || used < 0 || stats.bavail < 0 || usable <= 0) return null
  return roundPercent((used / usable) * 100)
}

/** statfs of `path`; null when it cannot be read (a vanished mount, no permission). */
export function readFsStats(path: string): FsStats | null {
  try {
    return statfsSync(path)
  } catch {
    return null
  }
}
