import { lineAfter } from './proc-text.ts'

/**
 * CPU time from the aggregate `cpu` line of Linux `/proc/stat`, in clock ticks since boot.
 * `cpu_usage` is the busy share of the ticks that passed between two readings, all cores.
 */
export interface CpuTimes {
  /** every tick of every core: user + nice + system + idle + iowait + irq + softirq + steal */
  total: number
  /** ticks spent idle or waiting for I/O (nothing to run) */
  idle: number
}

/** The aggregate `cpu ` line; undefined when the text has none (not a /proc/stat). */
export function parseCpuTimes(procStat: string): CpuTimes | undefined {
  const line = lineAfter(procStat, 'cpu ')
  if (line === undefined) return undefined
  const fields = line.trim().split(/\s+/).map(Number)
  if (fields.length < 4 || fields.some((n) => !Number.isFinite(n))) return undefined
  // guest and guest_nice (fields 9 and 10) are already counted in user and nice
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle: idle + iowait }
}

/**
 * Percent busy between two readings, rounded to 0.01 and clamped to 0–100. Null without a
 * previous reading, or when the counters went backwards (a reboot) or did not move at all.
 */
export function cpuUsage(previous: CpuTimes | undefined, current: CpuTimes): number | null {
  if (!previous) return null
  const total = current.total - previous.total
  const idle = current.idle - previous.idle
  if (total <= 0 || idle < 0) return null
  return roundPercent(((total - idle) / total) * 100)
}

export function roundPercent(value: number): number {
  return Math.min(100, Math.max(0, Math.round(value * 100) / 100))
}
