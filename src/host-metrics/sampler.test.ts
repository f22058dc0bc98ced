import { readFileSync, statfsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { HostSampler, sampleFromOs, sampleFromProc, type ProcSnapshot } from './sampler.ts'

const fixture = (path: string) => readFileSync(new URL(`./sources/fixtures/${path}`, import.meta.url), 'latin1')
const ROOT = { bsize: 4096, blocks: 66053021, bfree: 62852763, bavail: 20675058 }
const snapshot = (dir: string, netDir = dir): ProcSnapshot => ({
  stat: fixture(`${dir}/stat`),
  meminfo: fixture(`${dir}/meminfo`),
  netDev: fixture(`${netDir}/net-dev`),
  fs: ROOT,
})
const at = (iso: string) => ({ host: 'web-1', time: new Date(iso) })

describe('sampleFromProc', () => {
  it('composes the SPEC sample, fields in SPEC order, cpu_calls null on Linux', () => {
    const first = sampleFromProc(snapshot('linux-vm-a'), undefined, at('2026-11-24T10:00:00.000Z'))
    const { sample } = sampleFromProc(snapshot('linux-vm-b'), first.state, at('2026-11-24T10:00:00.500Z'))
    expect(Object.keys(sample).slice(0, 11)).toEqual(['host', 'time', 'cpu_usage', 'memory_usage', 'cpu_interrupts', 'cpu_calls', 'memory_used', 'memory_free', 'bytes_sent', 'bytes_received', 'disk_usage'])
    expect(sample).toMatchObject({
      host: 'web-1',
      time: '2026-11-24T10:00:00.500Z',
      cpu_usage: 2.97,
      cpu_calls: null,
      memory_free: 22578476 * 1024,
      bytes_received: 425760378,
      bytes_sent: 1254200,
      disk_usage: 13.4,
    })
    expect(sample.cpu_interrupts).toBeGreaterThan(441193)
  })

  it('a first sample has every field but cpu_usage, which needs an interval', () => {
    const { sample, state } = sampleFromProc(snapshot('linux-vm-a'), undefined, at('2026-11-24T10:00:00.000Z'))
    expect(sample.cpu_usage).toBeNull()
    expect(sample.memory_usage).toBe(3.7)
    expect(sample.cpu_interrupts).toBe(441193)
    expect(state.bootTime).toBe(1795962792)
  })

  it('after a reboot starts over: no cpu_usage across the boundary, counters since the new boot', () => {
    const before = sampleFromProc(snapshot('linux-vm-b', 'linux-interface-appears'), undefined, at('2026-11-24T10:00:00.000Z'))
    const { sample, state } = sampleFromProc(snapshot('linux-rebooted'), before.state, at('2026-11-24T10:05:00.000Z'))
    expect(sample.cpu_usage).toBeNull()
    expect(sample.cpu_interrupts).toBe(9000)
    // the vanished docker0/veth of the old boot are not carried into the new one
    expect([sample.bytes_received, sample.bytes_sent]).toEqual([15000, 3000])
    expect(state.bootTime).toBe(1795999000)
  })

  it('a missing statfs gives disk_usage null', () => {
    const { sample } = sampleFromProc({ ...snapshot('linux-vm-a'), fs: null }, undefined, at('2026-11-24T10:00:00.000Z'))
    expect(sample.disk_usage).toBeNull()
  })
})

describe('sampleFromOs (macOS, Windows)', () => {
  for (const platform of ['macos', 'windows']) {
    it(`${platform}: what the os module offers, null for the rest`, () => {
      const [a, b] = [1, 2].map((n) => JSON.parse(fixture(`${platform}/os-${n}.json`)))
      const first = sampleFromOs(a, ROOT, undefined, at('2026-11-24T10:00:00.000Z'))
      expect(first.sample.cpu_usage).toBeNull()
      const { sample } = sampleFromOs(b, ROOT, first.state, at('2026-11-24T10:00:00.500Z'))
      expect(sample.cpu_usage).toBe(platform === 'macos' ? 30 : 40)
      expect(sample.memory_used).toBe(b.totalmem - b.freemem)
      expect(sample.memory_free).toBe(b.freemem)
      expect(sample.disk_usage).toBe(13.4)
      expect(sample).toMatchObject({ cpu_interrupts: null, cpu_calls: null, bytes_sent: null, bytes_received: null })
    })
  }
})

describe('HostSampler on this machine', () => {
  it('reads /proc here, and the os module when told it runs elsewhere', () => {
    const linux = new HostSampler('here')
    expect(linux.source).toBe('proc')
    linux.prime()
    // cpu_usage is measured over an interval: give it one of 100 ms (10 clock ticks per core)
    const until = Date.now() + 100
    while (Date.now() < until);
    const sample = linux.sample(new Date())
    expect(sample.cpu_usage).not.toBeNull()
    const root = statfsSync('/')
    const used = root.blocks - root.bfree
    expect(sample.disk_usage!).toBeCloseTo((used / (used + root.bavail)) * 100, 0)

    const mac = new HostSampler('here', '/', 'darwin')
    expect(mac.source).toBe('os')
    expect(mac.sample(new Date())).toMatchObject({ cpu_usage: null, cpu_interrupts: null, bytes_sent: null })
  })
})
