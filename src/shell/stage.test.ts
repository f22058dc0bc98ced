import { randomUUID } from 'node:crypto'
import { Admin } from '@platformatic/kafka'
import { describe, expect, inject, it } from 'vitest'
import { createLogger } from './log.ts'
import { retryWithBackoff } from './retry.ts'
import { StageComponent } from './stage.ts'
import { clientOptions, type KafkaConnection } from './kafka/connection.ts'
import { createProducer } from './kafka/producer.ts'
import type { OutputRecord } from './kafka/records.ts'
import { ensureTopics } from './kafka/topics.ts'
import { registry } from './observability/prometheus.ts'
import { waitFor } from '../../test/support/cli.ts'
import { readUntil } from '../../test/support/kafka.ts'

const connection: KafkaConnection = { bootstrapBrokers: [inject('kafkaBrokers')], clientId: 'kpipe-stage-test' }
const log = createLogger('silent')
const unique = (name: string) => `${name}-${randomUUID().slice(0, 8)}`

async function produce(topic: string, count: number) {
  const producer = createProducer(connection)
  const messages: OutputRecord[] = []
  for (let i = 0; i < count; i++) messages.push({ topic, key: `k${i}`, value: `v${i}` })
  await producer.send({ messages })
  await producer.close()
}

async function counterValue(name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name)
  const values = (metric?.values ?? []) as { value: number; labels: Record<string, string | number> }[]
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((n, v) => n + v.value, 0)
}

describe.each(['at-least-once', 'exactly-once'] as const)('a stage, %s', (delivery) => {
  it('punctuation: periodic records go out with the batches and while idle, and once more at the stop, counting only what is committed', async () => {
    const input = unique('stage-in')
    const output = unique('stage-out')
    const ticks = unique('stage-ticks')
    await ensureTopics(connection, [input, output, ticks].map((name) => ({ name, partitions: 2, replicationFactor: 1 })))
    await produce(input, 40)
    let committed = 0
    const stop = new AbortController()
    const stage = new StageComponent({
      name: unique('part'),
      connection,
      groupId: unique('stage'),
      inputs: [input],
      handle: (batch) => batch.map((r) => ({ topic: output, key: r.key, value: r.value })),
      committed: (batch) => {
        committed += batch.length
      },
      punctuation: { everyMs: 100, records: ({ final }) => [{ topic: ticks, key: 'tick', value: JSON.stringify({ committed, final }) }] },
      outcomes: { [output]: 'copied', [ticks]: 'tick' },
      producer: createProducer(connection, delivery === 'exactly-once' ? { transactionalId: unique('tx') } : {}),
      delivery,
      maxBatchSize: 10,
      log,
    })
    await stage.start(stop.signal)
    await waitFor(() => committed === 40, 30_000, 'the 40 records committed')
    // idle now: the punctuation still comes, on its own (one written with a batch counts only the batches before it)
    await waitFor(async () => (await readUntil(connection, ticks, 1)).some((r) => JSON.parse(r.value!.toString()).committed === 40), 30_000, 'a tick after the last batch')
    stop.abort()
    await stage.done
    expect(await stage.ready()).toBe(false)
    const written = await counterValue('kpipe_records_out_total', { topic: ticks, outcome: 'tick' })
    const all = (await readUntil(connection, ticks, written)).map((r) => JSON.parse(r.value!.toString()) as { committed: number; final: boolean })
    expect(all).toHaveLength(written)
    expect(all.at(-1)).toEqual({ committed: 40, final: true })
    // a tick never claims more than was committed when it was written: the counts only grow
    for (let i = 1; i < all.length; i++) expect(all[i]!.committed).toBeGreaterThanOrEqual(all[i - 1]!.committed)
    expect(await readUntil(connection, output, 40)).toHaveLength(40)
    expect(await counterValue('kpipe_records_in_total', { topic: input })).toBe(40)
    expect(await counterValue('kpipe_records_out_total', { topic: output, outcome: 'copied' })).toBe(40)
  })
})

describe('a stage that keeps its own offsets', () => {
  it('starts each partition where the stage says, skips what it has, and commits nothing to Kafka', async () => {
    const input = unique('own-in')
    await ensureTopics(connection, [{ name: input, partitions: 1, replicationFactor: 1 }])
    await produce(input, 30)
    const groupId = unique('own')
    const seen: bigint[] = []
    // the stage's own store: the next offset to handle
    let stored = 12n
    const stop = new AbortController()
    const stage = new StageComponent({
      name: unique('part'),
      connection,
      groupId,
      inputs: [input],
      handle: (batch) => {
        for (const r of batch) seen.push(r.offset)
        stored = batch.at(-1)!.offset + 1n
        return []
      },
      startingOffsets: async (partitions) => new Map(partitions.map((p) => [`${p.topic}\0${p.partition}`, stored])),
      commitOffsets: false,
      log,
    })
    await stage.start(stop.signal)
    await waitFor(() => stored === 30n, 30_000, 'the records after offset 12')
    stop.abort()
    await stage.done
    expect(seen).toEqual(Array.from({ length: 18 }, (_, i) => BigInt(12 + i)))
    const admin = new Admin(clientOptions(connection))
    try {
      const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] })
      const committed = group?.topics.find((t) => t.name === input)?.partitions.find((p) => p.partitionIndex === 0)?.committedOffset ?? -1n
      expect(committed).toBe(-1n)
    } finally {
      await admin.close()
    }
  })
})

describe('the component lifecycle', () => {
  it('a stop during the start-up wait ends it cleanly: done resolves, nothing consumed', async () => {
    const stop = new AbortController()
    const stage = new StageComponent({
      name: unique('part'),
      connection,
      groupId: unique('never'),
      inputs: [unique('never')],
      handle: () => [],
      log,
      prepare: (signal) => retryWithBackoff(async () => {
        throw new Error('the database is away')
      }, { what: 'database unavailable', log, signal }),
    })
    const starting = stage.start(stop.signal)
    setTimeout(() => stop.abort(), 300)
    await starting
    await stage.done
    expect(stage.loop).toBeUndefined()
    expect(await stage.ready()).toBe(false)
  })
})
