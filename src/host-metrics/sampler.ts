import { cpus, freemem, totalmem } from 'node:os'
import { readFileSync } from 'node:fs'
import type { HostSample } from './sample.ts'
import { cpuUsage, parseCpuTimes, type CpuTimes } from './sources/cpu.ts'
import { parseKernelCounters } from './sources/interrupts.ts'
import { memoryFields, parseMeminfo } from './sources/memory.ts'
import { networkTotals, parseNetDev, type NetworkState } from './sources/network.ts'
import { diskUsage, readFsStats, type FsStats } from './sources/disk.ts'
import { cpuTimesFromOs, memoryFromOs, type OsReadings } from './sources/os-fallback.ts'

/** The raw texts of one Linux reading: three /proc files and a statfs. */
export interface ProcSnapshot {
  stat: string
  meminfo: string
  netDev: string
  fs: FsStats | null
}

/** What a sample needs from the one before it. */
export interface SamplerState {
  cpu?: CpuTimes
  network?: NetworkState
  bootTime?: number | null
}

export interface SampleMeta {
  host: string
  time: Date
}

export interface SampleResult {
  sample: HostSample
  state: SamplerState
}

/**
 * A sample from a Linux snapshot: pure. Without a previous state (the first reading, or
 * after a reboot, detected by a new boot time) `cpu_usage` is null, since a busy share needs
 * an interval; the collector therefore takes a baseline reading before its first tick.
 */
export function sampleFromProc(snapshot: ProcSnapshot, previous: SamplerState | undefined, meta: SampleMeta): SampleResult {
  const kernel = parseKernelCounters(snapshot.stat)
  const rebooted = previous?.bootTime != null && kernel.bootTime != null && previous.bootTime !== kernel.bootTime
  const before = rebooted ? undefined : previous
  const cpu = parseCpuTimes(snapshot.stat)
  const network = networkTotals(parseNetDev(snapshot.netDev), before?.network)
  const sample: HostSample = {
    host: meta.host,
    time: meta.time.toISOString(),
    cpu_usage: cpu ? cpuUsage(before?.cpu, cpu) : null,
    ...(memoryFields(parseMeminfo(snapshot.meminfo))),
    cpu_interrupts: kernel.interrupts,
    // Linux counts no system calls anywhere in /proc (only tracing could); null, not 0.
    cpu_calls: null,
    bytes_sent: network.bytes_sent,
    bytes_received: network.bytes_received,
    disk_usage: snapshot.fs ? diskUsage(snapshot.fs) : null,
    context_switches: kernel.contextSwitches,
    soft_interrupts: kernel.softInterrupts,
  }
  return { sample: ordered(sample), state: { cpu, network: network.state, bootTime: kernel.bootTime } }
}

/** A sample from Node's `os` module (macOS, Windows, or Linux without /proc): pure. */
export function sampleFromOs(readings: OsReadings, fs: FsStats | null, previous: SamplerState | undefined, meta: SampleMeta): SampleResult {
  const cpu = cpuTimesFromOs(readings.cpus)
  const sample: HostSample = {
    host: meta.host,
    time: meta.time.toISOString(),
    cpu_usage: cpu ? cpuUsage(previous?.cpu, cpu) : null,
    ...(memoryFields(memoryFromOs(readings))),
    cpu_interrupts: null,
    cpu_calls: null,
    bytes_sent: null,
    bytes_received: null,
    disk_usage: fs ? diskUsage(fs) : null,
  }
  return { sample: ordered(sample), state: { cpu } }
}

/** SPEC.md's field order, so that the JSON reads the same on every platform. */
function ordered(s: HostSample): HostSample {
  const out: HostSample = {
    host: s.host,
    time: s.time,
    cpu_usage: s.cpu_usage,
    memory_usage: s.memory_usage,
    cpu_interrupts: s.cpu_interrupts,
    cpu_calls: s.cpu_calls,
    memory_used: s.memory_used,
    memory_free: s.memory_free,
    bytes_sent: s.bytes_sent,
    bytes_received: s.bytes_received,
    disk_usage: s.disk_usage,
  }
  if (s.context_switches !== undefined) out.context_switches = s.context_switches
  if (s.soft_interrupts !== undefined) out.soft_interrupts = s.soft_interrupts
  return out
}

export function readProcSnapshot(diskPath: string, procRoot = '/proc'): ProcSnapshot {
  return {
    stat: readFileSync(`${procRoot}/stat`, 'latin1'),
    meminfo: readFileSync(`${procRoot}/meminfo`, 'latin1'),
    netDev: readFileSync(`${procRoot}/net/dev`, 'latin1'),
    fs: readFsStats(diskPath),
  }
}

export function readOs(): OsReadings {
  return { platform: process.platform, cpus: cpus(), totalmem: totalmem(), freemem: freemem() }
}

/**
 * The host sampler: reads /proc on Linux (one small read per file, no child processes),
 * Node's `os` module elsewhere, and remembers the previous reading between calls.
 */
export class HostSampler {
  readonly source: 'proc' | 'os'
  #state: SamplerState | undefined

  constructor(
    readonly host: string,
    readonly diskPath = '/',
    platform: NodeJS.Platform = process.platform,
  ) {
    this.source = platform === 'linux' && readableProc() ? 'proc' : 'os'
  }

  /** Reads a baseline, so that the first sample's `cpu_usage` covers a real interval. */
  prime(): void {
    this.sample(new Date())
  }

  sample(time: Date): HostSample {
    const meta = { host: this.host, time }
    const result =
      this.source === 'proc'
        ? sampleFromProc(readProcSnapshot(this.diskPath), this.#state, meta)
        : sampleFromOs(readOs(), readFsStats(this.diskPath), this.#state, meta)
    this.#state = result.state
    return result.sample
  }
}

function readableProc(): boolean {
  try {
    readFileSync('/proc/stat', 'latin1')
    return true
  } catch {
    return false
  }
}
