import { bench, describe } from 'vitest'
import { HostSampler } from './sampler.ts'
import { decodeSample } from './sink/decode.ts'

// `npx vitest bench src/host-metrics`: the cost claims of docs/metrics.md
const sampler = new HostSampler('bench')
sampler.prime()

const start = Date.parse('2026-01-01T00:00:00Z')
const records = Array.from({ length: 1000 }, (_, i) =>
  Buffer.from(JSON.stringify({ host: `h${i % 20}`, time: new Date(start + i * 500).toISOString(), cpu_usage: 12.5, memory_usage: 43.1, cpu_interrupts: 123456789 + i, cpu_calls: null, memory_used: 7340032000, memory_free: 1048576000, bytes_sent: 123456 + i, bytes_received: 654321 + i, disk_usage: 57.3 })),
)
const csv = Buffer.from('2024-11-20 10:00:00.123456, 12.5, 45.2, 123,0,7340032000,1048576000,123456,654321, 57.3')
const key = Buffer.from('web-1')

describe('collector', () => {
  bench('one sample from /proc and statfs', () => {
    sampler.sample(new Date())
  })
  bench('one sample serialised', () => {
    JSON.stringify(sampler.sample(new Date()))
  })
})

describe('sink', () => {
  bench('decode 1000 JSON samples', () => {
    for (const record of records) decodeSample(record, key)
  })
  bench('decode 1000 comma-separated lines', () => {
    for (let i = 0; i < 1000; i++) decodeSample(csv, key)
  })
})
