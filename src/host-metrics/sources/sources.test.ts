import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { cpuUsage, parseCpuTimes } from './cpu.ts'
import { parseKernelCounters } from './interrupts.ts'
import { memoryFields, parseMeminfo } from './memory.ts'
import { networkTotals, parseNetDev } from './network.ts'
import { diskUsage, readFsStats, type FsStats } from './disk.ts'
import { cpuTimesFromOs, memoryFromOs } from './os-fallback.ts'

const fixture = (path: string) => readFileSync(new URL(`./fixtures/${path}`, import.meta.url), 'latin1')

describe('cpu (/proc/stat)', () => {
  it('sums the aggregate line, leaving guest time out (already in user and nice)', () => {
    expect(parseCpuTimes(fixture('linux-vm-a/stat'))).toEqual({ total: 15885 + 4290 + 84026 + 441 + 107 + 22, idle: 84026 + 441 })
    expect(parseCpuTimes('cpu  10 1 2 30 4 5 6 7 100 100\n')).toEqual({ total: 65, idle: 34 })
  })

  it('is the busy share of the ticks between two readings', () => {
    const a = parseCpuTimes(fixture('linux-vm-a/stat'))!
    const b = parseCpuTimes(fixture('linux-vm-b/stat'))!
    // 202 ticks passed, 196 of them idle or iowait
    expect(cpuUsage(a, b)).toBe(2.97)
  })

  it('is null for a first reading, after a reboot (counters went backwards), or when no tick passed', () => {
    const b = parseCpuTimes(fixture('linux-vm-b/stat'))!
    expect(cpuUsage(undefined, b)).toBeNull()
    expect(cpuUsage(b, parseCpuTimes(fixture('linux-rebooted/stat'))!)).toBeNull()
    expect(cpuUsage(b, b)).toBeNull()
  })

  it('rejects text that is not /proc/stat', () => {
    expect(parseCpuTimes('')).toBeUndefined()
    expect(parseCpuTimes('cpu0 1 2 3 4\n')).toBeUndefined()
    expect(parseCpuTimes('cpu  a b c d\n')).toBeUndefined()
  })
})

describe('interrupts (/proc/stat)', () => {
  it('reads the interrupt total, soft interrupts, context switches and boot time', () => {
    expect(parseKernelCounters(fixture('linux-vm-a/stat'))).toEqual({ interrupts: 441193, softInterrupts: 220079, contextSwitches: 1019833, bootTime: 1795962792 })
  })

  it('says null for what a file lacks', () => {
    expect(parseKernelCounters('cpu  1 2 3 4\n')).toEqual({ interrupts: null, softInterrupts: null, contextSwitches: null, bootTime: null })
  })
})

describe('memory (/proc/meminfo)', () => {
  it('uses MemAvailable, in bytes', () => {
    const memory = parseMeminfo(fixture('linux-vm-a/meminfo'))!
    expect(memory).toEqual({ total: 24684096 * 1024, available: 23771368 * 1024, free: 22572872 * 1024 })
    expect(memoryFields(memory)).toEqual({ memory_usage: 3.7, memory_used: (24684096 - 23771368) * 1024, memory_free: 22572872 * 1024 })
  })

  it('estimates available as free + buffers + cached on kernels before 3.14', () => {
    const text = fixture('linux-old-kernel/meminfo')
    expect(text).not.toContain('MemAvailable')
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)![1])
    expect(parseMeminfo(text)!.available).toBe((kb('MemFree') + kb('Buffers') + kb('Cached')) * 1024)
  })

  it('gives nulls, not zeros, when the file is unusable', () => {
    expect(parseMeminfo('garbage')).toBeUndefined()
    expect(memoryFields(undefined)).toEqual({ memory_usage: null, memory_used: null, memory_free: null })
  })
})

describe('network (/proc/net/dev)', () => {
  it('reads every interface and leaves loopback out of the totals', () => {
    const interfaces = parseNetDev(fixture('linux-vm-b/net-dev'))
    expect(interfaces.map((i) => i.name)).toEqual(['lo', 'ifb0', 'ifb1', 'eth0'])
    expect(interfaces[3]).toEqual({ name: 'eth0', received: 425760378, sent: 1254200 })
    const totals = networkTotals(interfaces)
    expect([totals.bytes_received, totals.bytes_sent]).toEqual([425760378, 1254200])
  })

  it('reads names glued to their numbers (long names leave no space after the colon)', () => {
    expect(parseNetDev('veth3f2a1b0:2000 20 0 0 0 0 0 0 1500 15 0 0 0 0 0 0\n')).toEqual([{ name: 'veth3f2a1b0', received: 2000, sent: 1500 }])
  })

  it('never goes backwards when an interface appears, vanishes, or restarts its counters', () => {
    const readings = ['linux-vm-b', 'linux-interface-appears', 'linux-interface-vanishes', 'linux-counter-reset'].map((d) => parseNetDev(fixture(`${d}/net-dev`)))
    let state
    const seen: [number, number][] = []
    for (const interfaces of readings) {
      const totals = networkTotals(interfaces, state)
      state = totals.state
      seen.push([totals.bytes_received, totals.bytes_sent])
    }
    expect(seen[1]).toEqual([425800000 + 5000 + 2000, 1260000 + 7000 + 1500])
    // the veth left with 2000/1500 bytes: they stay in the total
    expect(seen[2]).toEqual([425900000 + 6000 + 2000, 1270000 + 8000 + 1500])
    // eth0 restarted from 1000/800 and docker0 vanished: both carried
    expect(seen[3]).toEqual([425900000 + 6000 + 2000 + 1000, 1270000 + 8000 + 1500 + 800])
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]![0]).toBeGreaterThanOrEqual(seen[i - 1]![0])
      expect(seen[i]![1]).toBeGreaterThanOrEqual(seen[i - 1]![1])
    }
  })
})

describe('disk (statfs)', () => {
  const cases = JSON.parse(fixture('statfs.json')) as Record<string, { stats: FsStats; expected: number | null }>
  for (const [name, { stats, expected }] of Object.entries(cases)) {
    it(`${name} → ${expected}`, () => {
      expect(diskUsage(stats)).toBe(expected)
    })
  }

  it('reads null for a path that does not exist, instead of throwing', () => {
    expect(readFsStats('/no/such/mount/here')).toBeNull()
    expect(readFsStats('/')).not.toBeNull()
  })
})

describe('os fallback (macOS, Windows)', () => {
  for (const platform of ['macos', 'windows']) {
    it(`${platform}: CPU usage from per-core times, memory from total and free`, () => {
      const [first, second] = [1, 2].map((n) => JSON.parse(fixture(`${platform}/os-${n}.json`)) as { cpus: { times: Record<string, number> }[]; totalmem: number; freemem: number })
      const a = cpuTimesFromOs(first!.cpus as never)!
      const b = cpuTimesFromOs(second!.cpus as never)!
      const busy = platform === 'macos' ? 150 / 500 : 200 / 500
      expect(cpuUsage(a, b)).toBeCloseTo(busy * 100, 2)
      const memory = memoryFromOs(second!)!
      expect(memory.total).toBe(second!.totalmem)
      expect(memory.available).toBe(second!.freemem)
    })
  }

  it('gives nothing rather than nonsense for empty readings', () => {
    expect(cpuTimesFromOs([])).toBeUndefined()
    expect(memoryFromOs({ totalmem: 0, freemem: 0 })).toBeUndefined()
  })
})
