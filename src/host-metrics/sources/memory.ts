import { roundPercent } from './cpu.ts'

/** Memory in bytes. `available` is what can be given to new work without swapping. */
export interface Memory {
  total: number
  available: number
  free: number
}

export interface MemoryFields {
  memory_usage: number | null
  memory_used: number | null
  memory_free: number | null
}

/**
 * Linux `/proc/meminfo` (values in kB). Kernels before 3.14 have no MemAvailable; there the
 * estimate is MemFree + Buffers + Cached, as `free` did before it existed.
 */
export function parseMeminfo(meminfo: string): Memory | undefined {
  const kb = new Map<string, number>()
  for (const line of meminfo.split('\n')) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const value = Number.parseInt(line.slice(colon + 1), 10)
    if (Number.isFinite(value)) kb.set(line.slice(0, colon), value)
  }
  const total = kb.get('MemTotal')
  const free = kb.get('MemFree')
  if (total === undefined || free === undefined || total <= 0) return undefined
  const available = kb.get('MemAvailable') ?? free + (kb.get('Buffers') ?? 0) + (kb.get('Cached') ?? 0)
  return { total: total * 1024, available: Math.min(available, total) * 1024, free: free * 1024 }
}

export function memoryFields(memory: Memory | undefined): MemoryFields {
  if (!memory) return { memory_usage: null, memory_used: null, memory_free: null }
  const used = memory.total - memory.available
  return { memory_usage: roundPercent((used / memory.total) * 100), memory_used: used, memory_free: memory.free }
}
