import { describe, expect, it } from 'vitest'
import { lineageHeaders, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC } from './records.ts'

/** The bytes the headers had when they were built from strings: the contract's text, UTF-8. */
const expected = (topic: string, partition: number, offset: bigint) => [
  [SOURCE_TOPIC, Buffer.from(topic)],
  [SOURCE_PARTITION, Buffer.from(String(partition))],
  [SOURCE_OFFSET, Buffer.from(offset.toString())],
]

describe('lineage headers', () => {
  it('name the source topic, partition and offset in decimal text, in that order', () => {
    const headers = lineageHeaders({ topic: 'user-login', partition: 2, offset: 1_234_567n })
    expect([...headers.keys()]).toEqual(['source-topic', 'source-partition', 'source-offset'])
    expect([...headers].map(([k, v]) => [k, v.toString('utf8')])).toEqual([['source-topic', 'user-login'], ['source-partition', '2'], ['source-offset', '1234567']])
  })

  it('give the same bytes as the decimal text for every kind of offset, across many slabs', () => {
    const offsets = [0n, 1n, 9n, 10n, 99n, 100n, 999_999n, 1_000_000n, 2n ** 31n, 2n ** 32n + 7n, 9_007_199_254_740_991n, 9_007_199_254_740_992n, 2n ** 63n - 1n]
    for (let i = 0n; i < 30_000n; i++) offsets.push(i * 7_919n + (i % 13n) * 10n ** (i % 17n))
    const seen: Buffer[] = []
    for (const [n, offset] of offsets.entries()) {
      const topic = n % 3 === 0 ? 'logins-ü' : 'user-login'
      const partition = n % 5 === 4 ? 70_000 : n % 7
      const headers = lineageHeaders({ topic, partition, offset })
      expect([...headers]).toEqual(expected(topic, partition, offset))
      seen.push(headers.get(SOURCE_OFFSET)!)
    }
    // earlier headers are not overwritten by later ones sharing their slab
    for (const [n, bytes] of seen.entries()) expect(bytes.toString('latin1')).toBe(offsets[n]!.toString())
  })
})
