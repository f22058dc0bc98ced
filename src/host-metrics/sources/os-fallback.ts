import type { CpuInfo } from 'node:os'
import type { CpuTimes } from './cpu.ts'
import type { Memory } from './memory.ts'

/**
 * macOS and Windows, best effort through Node's `os` module: CPU times per core and memory
 * totals. There is no portable way to read interrupt, system-call or network counters
 * without native code or spawning a program per sample, so those fields are null there.
 */
export interface OsReadings {
  platform: NodeJS.Platform
  cpus: Pick<CpuInfo, 'times'>[]
  totalmem: number
  freemem: number
}

/** Sum over cores, in milliseconds; the usage formula only needs ratios, so the unit does not matter. */
export function cpuTimesFromOs(cpus: OsReadings['cpus']): CpuTimes | undefined {
  if (cpus.length === 0) return undefined
  let total = 0
  let idle = 0
  for (const { times } of cpus) {
    total += times.user + times.nice + times.sys + times.idle + times.irq
    idle += times.idle
  }
  return total > 0 ? { total, idle } : undefined
}

/**
 * Windows' free memory is the physical memory available to programs, the same notion as
 * Linux's MemAvailable. macOS reports only truly free pages (cache counts as used), so memory
 * usage reads higher there than Activity Monitor's "memory pressure"; documented.
 */
export function memoryFromOs(readings: Pick<OsReadings, 'totalmem' | 'freemem'>): Memory | undefined {
  if (!(readings.totalmem > 0) || readings.freemem < 0) return undefined
  const free = Math.min(readings.freemem, readings.totalmem)
  return { total: readings.totalmem, available: free, free }
}
