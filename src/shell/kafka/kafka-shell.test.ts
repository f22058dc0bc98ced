import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { createLogger } from '../log.ts'
import type { KafkaConnection } from './connection.ts'
import { ConsumerLoop, lastPerPartition } from './consumer-loop.ts'
import { createProducer } from './producer.ts'
import { lineageHeaders, type OutputRecord } from './records.ts'
import { ensureTopics } from './topics.ts'
import { waitFor } from '../../../test/support/cli.ts'
import { groupCommittedOffsets, readUntil } from '../../../test/support/kafka.ts'

const connection: KafkaConnection = { bootstrapBrokers: [inject('kafkaBrokers')], clientId: 'kpipe-test' }
const log = createLogger('silent')
const unique = (name: string) => `${name}-${randomUUID().slice(0, 8)}`

async function produce(topic: string, count: number, from = 0) {
  const producer = createProducer(connection)
  const messages: OutputRecord[] = []
  for (let i = from; i < from + count; i++) messages.push({ topic, key: `k${i % 7}`, value: `v${i}`, headers: { n: String(i) } })
  await producer.send({ messages })
  await producer.close()
}

const committed = (groupId: string, topic: string, partitions: number) => groupCommittedOffsets(connection, groupId, topic, partitions)

describe('Kafka shell against a real broker', () => {
  const loops: ConsumerLoop[] = []
  afterAll(() => loops.forEach((l) => l.stop()))

  it('round-trips keys, values and headers; ensureTopics twice is harmless', async () => {
    const topic = unique('roundtrip')
    const first = await ensureTopics(connection, [{ name: topic, partitions: 3, replicationFactor: 1, configs: { 'retention.ms': '3600000' } }])
    const second = await ensureTopics(connection, [{ name: topic, partitions: 3, replicationFactor: 1 }])
    expect(first.created).toEqual([topic])
    expect(second.existing).toEqual([topic])
    await produce(topic, 20)
    const records = await readUntil(connection, topic, 20)
    expect(records).toHaveLength(20)
    const byValue = new Map(records.map((r) => [r.value!.toString(), r]))
    const r5 = byValue.get('v5')!
    expect(r5.key!.toString()).toBe('k5')
    expect(r5.headers.get('n')!.toString()).toBe('5')
    // same key, same partition
    expect(new Set(records.filter((r) => r.key!.toString() === 'k3').map((r) => r.partition)).size).toBe(1)
  })

  it('ensureTopics at once from two clients: one creates, the other finds it (the broker\'s TOPIC_ALREADY_EXISTS)', async () => {
    const topic = unique('race')
    const results = await Promise.all([1, 2, 3].map(() => ensureTopics(connection, [{ name: topic, partitions: 1, replicationFactor: 1 }])))
    expect(results.flatMap((r) => r.created)).toEqual([topic])
    expect(results.flatMap((r) => r.existing)).toEqual([topic, topic])
  })

  it('commits only after the outputs are written, and redelivers a batch whose handler threw', async () => {
    const input = unique('loop-in')
    const output = unique('loop-out')
    const groupId = unique('loop')
    await ensureTopics(connection, [input, output].map((name) => ({ name, partitions: 2, replicationFactor: 1 })))
    await produce(input, 50)
    const seen: string[] = []
    let failures = 0
    const producer = createProducer(connection)
    const loop = new ConsumerLoop({
      connection,
      groupId,
      topics: [input],
      log,
      producer,
      isRetriable: () => true,
      handler: (batch) => {
        for (const r of batch) seen.push(`${r.partition}:${r.offset}`)
        if (failures < 2) {
          failures++
          throw new Error('database unavailable')
        }
        return batch.map((r) => ({ topic: output, key: r.key, value: r.value, headers: lineageHeaders(r) }))
      },
    })
    loops.push(loop)
    const running = loop.run()
    await waitFor(async () => (await committed(groupId, input, 2)).reduce((a, b) => a + b, 0n) === 50n, 30_000, 'all 50 offsets committed')
    loop.stop()
    await running
    await producer.close()
    // the failed batches were handed over again: some offsets were seen more than once
    expect(failures).toBe(2)
    expect(seen.length).toBeGreaterThan(50)
    expect(new Set(seen).size).toBe(50)
    const out = await readUntil(connection, output, 50)
    expect(new Set(out.map((r) => r.value!.toString())).size).toBe(50)
    expect(out[0]!.headers.get('source-topic')!.toString()).toBe(input)
  })

  it('a handler error that is not retriable stops the loop without committing', async () => {
    const input = unique('fatal-in')
    const groupId = unique('fatal')
    await ensureTopics(connection, [{ name: input, partitions: 1, replicationFactor: 1 }])
    await produce(input, 5)
    const loop = new ConsumerLoop({ connection, groupId, topics: [input], log, handler: () => { throw new Error('bug') } })
    await expect(loop.run()).rejects.toThrow('bug')
    expect(await committed(groupId, input, 1)).toEqual([-1n])
  })

  it('a process killed before its commit gets the batch delivered again to the next member', async () => {
    const input = unique('kill-in')
    const groupId = unique('kill')
    await ensureTopics(connection, [{ name: input, partitions: 1, replicationFactor: 1 }])
    await produce(input, 10)
    // A child process runs the loop from the build and dies with SIGKILL inside its handler.
    const loopModule = fileURLToPath(new URL('../../../dist/shell/kafka/consumer-loop.js', import.meta.url))
    const logModule = fileURLToPath(new URL('../../../dist/shell/log.js', import.meta.url))
    const correctionModule = fileURLToPath(new URL('../../../dist/shell/kafka/client-correction.js', import.meta.url))
    const script = `
      ;(await import(${JSON.stringify(correctionModule)})).registerClientCorrection()
      const { ConsumerLoop } = await import(${JSON.stringify(loopModule)})
      const { createLogger } = await import(${JSON.stringify(logModule)})
      const loop = new ConsumerLoop({ connection: ${JSON.stringify(connection)}, groupId: ${JSON.stringify(groupId)}, topics: [${JSON.stringify(input)}],
        log: createLogger('silent'), handler: (batch) => { process.stdout.write('got ' + batch.length + '\\n'); process.kill(process.pid, 'SIGKILL'); return [] } })
      await loop.run()`
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 })
    expect(child.signal).toBe('SIGKILL')
    expect(child.stdout).toMatch(/got \d+/)
    expect(await committed(groupId, input, 1)).toEqual([-1n])
    const seen: bigint[] = []
    const loop = new ConsumerLoop({ connection, groupId, topics: [input], log, sessionTimeoutMs: 6000, handler: (batch) => { seen.push(...batch.map((r) => r.offset)); return [] } })
    const running = loop.run()
    await waitFor(() => seen.length >= 10, 30_000, 'the 10 records again')
    loop.stop()
    await running
    expect(seen.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(i)))
    expect(await committed(groupId, input, 1)).toEqual([10n])
  })

  it('exactly-once: outputs and offsets commit in one transaction', async () => {
    const input = unique('eos-in')
    const output = unique('eos-out')
    const groupId = unique('eos')
    await ensureTopics(connection, [input, output].map((name) => ({ name, partitions: 2, replicationFactor: 1 })))
    await produce(input, 30)
    const producer = createProducer(connection, { transactionalId: unique('tx') })
    const loop = new ConsumerLoop({
      connection,
      groupId,
      topics: [input],
      log,
      producer,
      delivery: 'exactly-once',
      handler: (batch) => batch.map((r) => ({ topic: output, key: r.key, value: r.value, headers: lineageHeaders(r) })),
    })
    const running = loop.run()
    await waitFor(async () => (await committed(groupId, input, 2)).reduce((a, b) => a + b, 0n) === 30n, 30_000, 'offsets committed by the transaction')
    loop.stop()
    await running
    await producer.close()
    const out = await readUntil(connection, output, 30)
    expect(out).toHaveLength(30)
  })

  it('lastPerPartition picks the highest offset of each partition', () => {
    const r = (topic: string, partition: number, offset: number) => ({ topic, partition, offset: BigInt(offset) })
    expect(lastPerPartition([r('a', 0, 1), r('a', 1, 5), r('a', 0, 3), r('b', 0, 2)])).toEqual([r('a', 0, 3), r('a', 1, 5), r('b', 0, 2)])
    // runs of one partition, a lower offset inside a run, a partition coming back, a topic with the same partition number
    expect(lastPerPartition([r('a', 0, 5), r('a', 0, 3), r('a', 0, 6), r('b', 0, 9), r('a', 1, 1), r('a', 0, 4), r('a', 0, 8), r('b', 0, 7)]))
      .toEqual([r('a', 0, 8), r('b', 0, 9), r('a', 1, 1)])
    expect(lastPerPartition([])).toEqual([])
  })
})
