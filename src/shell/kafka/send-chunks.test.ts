import { describe, expect, it } from 'vitest'
import { sendChunks } from './consumer-loop.ts'
import type { OutputRecord } from './records.ts'
import { recordKeyPartition } from './partitioner.ts'

const record = (topic: string, bytes: number): OutputRecord => ({ topic, key: 'k', value: 'x'.repeat(bytes) })
/** the estimate sendChunks uses: value, key and 64 bytes of overhead and headers */
const estimate = (r: OutputRecord) => 64 + (r.value as string).length + (r.key as string).length

describe('sendChunks', () => {
  it('keeps every topic of every chunk under the limit, in order, losing nothing', () => {
    const outputs = Array.from({ length: 3000 }, (_, i) => record(['a', 'b', 'c'][i % 7 === 0 ? 2 : i % 2]!, 100 + (i % 300)))
    const chunks = [...sendChunks(outputs, 64 * 1024)]
    expect(chunks.flat()).toEqual(outputs)
    for (const chunk of chunks) {
      const perTopic = new Map<string, number>()
      for (const r of chunk) perTopic.set(r.topic, (perTopic.get(r.topic) ?? 0) + estimate(r))
      for (const bytes of perTopic.values()) expect(bytes).toBeLessThanOrEqual(64 * 1024)
    }
  })

  it('counts bytes per topic: outputs spread over topics need fewer chunks than one topic of the same bytes', () => {
    const spread = Array.from({ length: 900 }, (_, i) => record(['a', 'b', 'c'][i % 3]!, 200))
    const single = spread.map((r) => ({ ...r, topic: 'a' }))
    expect([...sendChunks(spread, 64 * 1024)].length).toBeLessThan([...sendChunks(single, 64 * 1024)].length)
  })

  it('with the partition counts known, counts bytes per partition the keys go to: fewer chunks, none over the limit in any partition', () => {
    const keyed = Array.from({ length: 900 }, (_, i): OutputRecord => ({ topic: 'a', key: `user-${i}`, value: 'x'.repeat(200) }))
    const partitions = (topic: string) => (topic === 'a' ? 3 : undefined)
    const whole = [...sendChunks(keyed, 64 * 1024)]
    const placed = [...sendChunks(keyed, 64 * 1024, partitions)]
    expect(placed.flat()).toEqual(keyed)
    expect(placed.length).toBeLessThan(whole.length)
    for (const chunk of placed) {
      const perPartition = new Map<number, number>()
      for (const r of chunk) {
        const p = recordKeyPartition(r.key as string) % 3
        perPartition.set(p, (perPartition.get(p) ?? 0) + estimate(r))
      }
      for (const bytes of perPartition.values()) expect(bytes).toBeLessThanOrEqual(64 * 1024)
    }
    // every key on one partition: as many chunks as when the topic is counted whole
    const onePartition = keyed.filter((r) => recordKeyPartition(r.key as string) % 3 === 0)
    expect([...sendChunks(onePartition, 16 * 1024, partitions)].length).toBe([...sendChunks(onePartition, 16 * 1024)].length)
  })

  it('records without a key, and of topics whose partitions are not known, count against every partition', () => {
    const keyless = Array.from({ length: 900 }, (): OutputRecord => ({ topic: 'a', value: 'x'.repeat(200) }))
    expect([...sendChunks(keyless, 64 * 1024, () => 3)].length).toBe([...sendChunks(keyless, 64 * 1024)].length)
    const keyed = keyless.map((r, i) => ({ ...r, key: `user-${i}` }))
    expect([...sendChunks(keyed, 64 * 1024, (topic) => (topic === 'b' ? 3 : undefined))].length).toBe([...sendChunks(keyed, 64 * 1024)].length)
  })

  it('a record larger than the limit goes alone rather than being dropped', () => {
    const outputs = [record('a', 10), record('a', 5000), record('a', 10)]
    expect([...sendChunks(outputs, 1000)]).toEqual([[outputs[0]], [outputs[1]], [outputs[2]]])
  })
})
