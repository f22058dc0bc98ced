import { randomUUID } from 'node:crypto'
import { Consumer } from '@platformatic/kafka'
import { describe, expect, inject, it } from 'vitest'
import { createLogger } from './log.ts'
import { retryWithBackoff } from './retry.ts'
import { StageComponent } from './stage.ts'
import type { KafkaConnection } from './kafka/connection.ts'
import { createProducer } from './kafka/producer.ts'
import type { ConsumedRecord, OutputRecord } from './kafka/records.ts'
import type { BatchContext } from './kafka/consumer-loop.ts'
import { ensureTopics } from './kafka/topics.ts'
import { registry } from './observability/prometheus.ts'
import { waitFor } from '../../test/support/cli.ts'
import { groupCommittedOffsets, readUntil } from '../../test/support/kafka.ts'

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
      committed: (records) => {
        committed += records
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

  it("a batch's outputs of 3 MB, keyed over three partitions: sent in chunks the broker takes (1 MiB per partition), every output once", async () => {
    const input = unique('big-in')
    const output = unique('big-out')
    await ensureTopics(connection, [{ name: input, partitions: 1, replicationFactor: 1 }, { name: output, partitions: 3, replicationFactor: 1 }])
    await produce(input, 10)
    let committed = 0
    const stop = new AbortController()
    const stage = new StageComponent({
      name: unique('part'),
      connection,
      groupId: unique('big'),
      inputs: [input],
      // 300 outputs of ~1 KB per input: one batch of 10 gives 3 MB, ~1 MB per partition
      handle: (batch) => batch.flatMap((r) => Array.from({ length: 300 }, (_, i) => ({ topic: output, key: `${r.key!.toString()}-${i}`, value: 'x'.repeat(1000) }))),
      committed: (records) => {
        committed += records
      },
      producer: createProducer(connection, delivery === 'exactly-once' ? { transactionalId: unique('tx') } : {}),
      delivery,
      maxBatchSize: 10,
      log,
    })
    await stage.start(stop.signal)
    await waitFor(() => committed === 10, 30_000, 'the 10 inputs committed')
    stop.abort()
    await stage.done
    const records = await readUntil(connection, output, 3000)
    expect(records).toHaveLength(3000)
    expect(new Set(records.map((r) => r.key!.toString())).size).toBe(3000)
    expect(new Set(records.map((r) => r.partition)).size).toBe(3)
  })
})

/**
 * The group's committed offset, once stable: an offset committed in a transaction becomes the
 * group's only when the broker has written the transaction's markers, which it does after the
 * commit has returned; until then the broker answers the previous offset, or, asked for a stable
 * one, UNSTABLE_OFFSET_COMMIT, which the client retries.
 */
async function committedOffset(groupId: string, topic: string, partition = 0): Promise<bigint> {
  return (await groupCommittedOffsets(connection, groupId, topic, partition + 1, { stable: true }))[partition]!
}

/** The group has committed the whole input of `count` records, and the output holds each copy once, in order (v0, v1, …). */
async function expectCopiedOnceInOrder(groupId: string, input: string, output: string, count: number): Promise<void> {
  expect(await committedOffset(groupId, input)).toBe(BigInt(count))
  const records = await readUntil(connection, output, count)
  expect(records.map((r) => r.value!.toString())).toEqual(Array.from({ length: count }, (_, i) => `v${i}`))
}

/**
 * Handler calls' contexts over one partition: `carry` gives a call's context its first offset and
 * size, and `committed` checks, for each call committed, that it follows the records committed
 * before it (`wrong` collects the calls that did not; `count` is the records committed).
 */
function contextsInOrder() {
  const wrong: string[] = []
  let count = 0
  return {
    wrong,
    count: () => count,
    carry(batch: ConsumedRecord[], context: BatchContext): void {
      context.carry = { first: batch[0]!.offset, size: batch.length }
    },
    committed(records: number, context: BatchContext): void {
      const carry = context.carry as { first: bigint; size: number }
      if (carry.first !== BigInt(count) || carry.size !== records) wrong.push(`${count}/${records}: ${carry.first}/${carry.size}`)
      count += records
    },
  }
}

/** An input topic holding `count` records, an output topic (one partition each) and a group id, all new. */
async function pipedTopics(name: string, count: number): Promise<{ input: string; output: string; groupId: string }> {
  const input = unique(`${name}-in`)
  const output = unique(`${name}-out`)
  await ensureTopics(connection, [input, output].map((topic) => ({ name: topic, partitions: 1, replicationFactor: 1 })))
  await produce(input, count)
  return { input, output, groupId: unique(name) }
}

/**
 * The producers of a stage under test: one, transactional under exactly-once; or several
 * transactional ones that take transactions in turn (`moreProducers`), each counting the
 * transactions it began.
 */
function stageWriters(delivery: 'at-least-once' | 'exactly-once', producers: 1 | 2 | 3) {
  const begun = Array.from({ length: producers }, () => 0)
  const make = (i: number) => {
    const producer = createProducer(connection, delivery === 'exactly-once' ? { transactionalId: unique('tx') } : {})
    const begin = producer.beginTransaction.bind(producer)
    producer.beginTransaction = ((...args: Parameters<typeof begin>) => {
      begun[i]!++
      return begin(...args)
    }) as typeof producer.beginTransaction
    return producer
  }
  return {
    producers: producers > 1 ? { producer: make(0), moreProducers: Array.from({ length: producers - 1 }, (_, i) => make(i + 1)) } : { producer: make(0) },
    /** with more producers: each began transactions, in turn (without failed ones retried, the counts differ by one at most) */
    expectAlternated(retried = false) {
      if (producers === 1) return
      for (const n of begun) expect(n).toBeGreaterThan(0)
      if (!retried) expect(Math.max(...begun) - Math.min(...begun)).toBeLessThanOrEqual(1)
    },
  }
}

describe.each([
  { delivery: 'at-least-once', producers: 1 },
  { delivery: 'exactly-once', producers: 1 },
  { delivery: 'exactly-once', producers: 2 },
  { delivery: 'exactly-once', producers: 3 },
] as const)('a pipelined stage, $delivery, $producers producer(s)', ({ delivery, producers }) => {
  it('handles batch n + 1 while batch n is written, but writes it only after batch n is written, with periodic records that count batch n, each batch with its own context', async () => {
    // outputs and the periodic ticks in one partition: the order they were written in
    const { input, output, groupId } = await pipedTopics('pipe', 200)
    let handled = 0
    let handledAhead = 0
    let batches = 0
    const contexts = contextsInOrder()
    const committed = contexts.count
    const stop = new AbortController()
    const writers = stageWriters(delivery, producers)
    const stage = new StageComponent({
      name: unique('part'),
      connection,
      groupId,
      inputs: [input],
      handle: (batch, context) => {
        // the batch before this one is not committed yet: it is being written now
        if (committed() < handled) handledAhead++
        handled += batch.length
        contexts.carry(batch, context)
        return batch.map((r) => ({ topic: output, key: r.key, value: r.value }))
      },
      committed: (records, context) => {
        contexts.committed(records, context)
        batches++
      },
      // a tick with every batch (and the last one at the stop): what was committed when it was written
      punctuation: { everyMs: 60_000, records: ({ final }) => [{ topic: output, key: 'tick', value: JSON.stringify({ committed: committed(), final }) }] },
      ...writers.producers,
      delivery,
      maxBatchSize: 10,
      pipeline: true,
      log,
    })
    await stage.start(stop.signal)
    await waitFor(() => committed() === 200, 30_000, 'the 200 records committed')
    stop.abort()
    await stage.done
    writers.expectAlternated()
    expect(contexts.wrong).toEqual([])
    // the input was there before the start: every batch after the first was handled while the one before was in flight
    expect(handledAhead).toBeGreaterThan(0)
    expect(await committedOffset(groupId, input)).toBe(200n)

    const written = await counterValue('kpipe_records_out_total', { topic: output })
    const records = await readUntil(connection, output, written)
    expect(records).toHaveLength(written)
    // In write order: each batch's copies, then its tick. A tick counts exactly the copies before
    // the tick before it: the tick was made only once the previous batch was committed (never
    // earlier: it would count less), and a batch is counted only once committed (never more).
    let copies = 0
    let copiesAtLastTick = 0
    let ticks = 0
    for (const r of records) {
      if (r.key?.toString() !== 'tick') {
        expect(r.value!.toString()).toBe(`v${copies}`)
        copies++
        continue
      }
      const tick = JSON.parse(r.value!.toString()) as { committed: number; final: boolean }
      ticks++
      if (tick.final) expect(tick.committed).toBe(copies)
      else expect(tick.committed, `tick ${ticks}`).toBe(copiesAtLastTick)
      copiesAtLastTick = copies
    }
    expect(copies).toBe(200)
    expect(ticks).toBe(batches + 1)
  })

  it('hands a batch to the handler in slices, each committed with its own context, every record once and in order', async () => {
    const { input, output, groupId } = await pipedTopics('slice', 200)
    const calls: number[] = []
    const committedRecords: bigint[] = []
    const wrongContext: string[] = []
    const stop = new AbortController()
    const writers = stageWriters(delivery, producers)
    const stage = new StageComponent({
      name: unique('part'),
      connection,
      groupId,
      inputs: [input],
      handle: (batch, context) => {
        calls.push(batch.length)
        context.carry = { first: batch[0]!.offset, size: batch.length }
        return batch.map((r) => ({ topic: output, key: r.key, value: r.value }))
      },
      committed: (records, context) => {
        const carry = context.carry as { first: bigint; size: number }
        if (carry.size !== records) wrongContext.push(`${records}: ${carry.first}/${carry.size}`)
        for (let i = 0; i < records; i++) committedRecords.push(carry.first + BigInt(i))
      },
      ...writers.producers,
      delivery,
      maxBatchSize: 10,
      pipeline: true,
      pipelineSlice: 4,
      log,
    })
    await stage.start(stop.signal)
    await waitFor(() => committedRecords.length === 200, 30_000, 'the 200 records committed')
    stop.abort()
    await stage.done
    writers.expectAlternated()
    // batches of up to 10 were read (the input was there before the start): handed over 4 at most at a time
    expect(Math.max(...calls)).toBe(4)
    expect(calls.reduce((a, b) => a + b, 0)).toBe(200)
    expect(wrongContext).toEqual([])
    expect(committedRecords).toEqual(Array.from({ length: 200 }, (_, i) => BigInt(i)))
    await expectCopiedOnceInOrder(groupId, input, output, 200)
  })

  it('a batch whose write fails: the next one, handled meanwhile, is dropped (not written, not committed, not counted) and read again', async () => {
    const { input, output, groupId } = await pipedTopics('pipe-fail', 30)
    const handledFirsts: bigint[] = []
    const committedFirsts: bigint[] = []
    const stop = new AbortController()
    const writers = stageWriters(delivery, producers)
    const stage = new StageComponent({
      name: unique('part'),
      connection,
      groupId,
      inputs: [input],
      handle: (batch, context) => {
        const first = batch[0]!.offset
        handledFirsts.push(first)
        context.carry = first
        const copies: OutputRecord[] = batch.map((r) => ({ topic: output, key: r.key, value: r.value }))
        // the second batch (offsets 10–19) starts with a record above the broker's message.max.bytes: its write is refused
        return first === 10n ? [{ topic: output, key: 'too-large', value: Buffer.alloc(2 * 1024 * 1024, 120) }, ...copies] : copies
      },
      committed: (_records, context) => {
        committedFirsts.push(context.carry as bigint)
      },
      ...writers.producers,
      delivery,
      maxBatchSize: 10,
      pipeline: true,
      log,
    })
    await stage.start(stop.signal)
    // the write of the second batch fails (its retries run out), the session ends, and the next one reads it again
    await waitFor(() => handledFirsts.filter((f) => f === 10n).length >= 2, 60_000, 'the second batch read again after its write failed')
    stop.abort()
    await stage.done
    // the second batch's transaction was tried again on its producer
    writers.expectAlternated(true)
    // the third batch was handled while the second was being written, then dropped with it
    expect(handledFirsts.indexOf(20n)).toBeGreaterThan(handledFirsts.indexOf(10n))
    expect(handledFirsts.indexOf(20n)).toBeLessThan(handledFirsts.lastIndexOf(10n))
    expect(committedFirsts).toEqual([0n])
    expect(await committedOffset(groupId, input)).toBe(10n)
    // only the first batch's outputs were ever written (and committed): all there is before a last record written now
    const after = createProducer(connection)
    await after.send({ messages: [{ topic: output, key: 'end', value: 'end' }] })
    await after.close()
    const records = await readUntil(connection, output, (out) => out.some((r) => r.key?.toString() === 'end'))
    expect(records.map((r) => r.value!.toString())).toEqual([...Array.from({ length: 10 }, (_, i) => `v${i}`), 'end'])
    expect(await counterValue('kpipe_records_out_total', { topic: output })).toBe(10)
  }, 90_000)
})

/**
 * `events` (`acked v3 v4`, `commit 20`, `committed 20`, in the order they happened) show the
 * overlap's limits: each commit began after every output below its offset was acknowledged and
 * after the commit before it ended, offsets rising up to `total`.
 */
function expectCommitsInOrder(events: string[], total: number): void {
  const acked = new Set<number>()
  let last = 0
  let open = false
  for (const e of events) {
    const [kind, rest] = [e.slice(0, e.indexOf(' ')), e.slice(e.indexOf(' ') + 1)]
    if (kind === 'acked') for (const v of rest.split(' ')) acked.add(Number(v.slice(1)))
    else if (kind === 'commit') {
      const offset = Number(rest)
      expect(open, e).toBe(false)
      expect(offset).toBeGreaterThan(last)
      for (let i = 0; i < offset; i++) expect(acked.has(i), `output v${i} acknowledged before the commit of ${offset}`).toBe(true)
      last = offset
      open = true
    } else open = false
  }
  expect(last).toBe(total)
}

/** Whether v`offset`, the first output after the records up to `offset`, has been acknowledged. */
function ackedAfter(events: string[], offset: number): boolean {
  return events.some((e) => e.startsWith('acked ') && e.split(' ').includes(`v${offset}`))
}

/**
 * The commit of `offset` ends only once the next batch's first output is acknowledged (`total`'s,
 * the last, does not wait). A stage that wrote batch n + 1 only after batch n's commit would never
 * get there, and the wait would fail.
 */
async function untilNextOutputsAcked(events: string[], offset: number, total: number): Promise<void> {
  if (offset < total) await waitFor(() => ackedAfter(events, offset), 30_000, `the outputs after offset ${offset} acknowledged`)
}

/** Each commit but the last ended after the next batch's outputs were acknowledged: they overlapped it. */
function expectNextOutputsBeforeEachCommitEnded(events: string[], total: number): void {
  events.forEach((e, i) => {
    if (!e.startsWith('committed ')) return
    const offset = Number(e.slice('committed '.length))
    if (offset < total) expect(ackedAfter(events.slice(0, i), offset), `v${offset} acknowledged before the commit of ${offset} ended\n${events.join('\n')}`).toBe(true)
  })
}

/**
 * Offset commits and acknowledged outputs traced to `events` (`commit 20`, `committed 20`,
 * `acked v3 v4`), each commit held by `hold` (given the offset) before it goes to the broker.
 * `restore` puts the client's commit back.
 */
function tracedAtLeastOnce(events: string[], hold: (offset: number) => Promise<void>) {
  const commit = Consumer.prototype.commit
  Consumer.prototype.commit = async function (this: Consumer, ...args: Parameters<typeof commit>) {
    if (args.length > 1) return commit.apply(this, args)
    const offset = args[0].offsets.map((o) => o.offset).join(',')
    events.push(`commit ${offset}`)
    await hold(Number(offset))
    await (commit.apply(this, args) as unknown as Promise<void>)
    events.push(`committed ${offset}`)
  } as typeof commit
  const producer = createProducer(connection)
  const send = producer.send.bind(producer)
  producer.send = (async (...args: Parameters<typeof send>) => {
    const result = await send(...args)
    events.push(`acked ${args[0].messages.map((m) => String(m.value)).join(' ')}`)
    return result
  }) as typeof producer.send
  return { producer, restore: () => { Consumer.prototype.commit = commit } }
}

type StageOptions = ConstructorParameters<typeof StageComponent>[0]

/**
 * A pipelined at-least-once stage of batches of 10 on `options` (inputs, handler, producer, …),
 * run until it has counted `total` records committed, then stopped; `restore` is called after it,
 * whatever happens.
 */
async function runPipelined(total: number, restore: () => void, options: Omit<StageOptions, 'name' | 'connection' | 'maxBatchSize' | 'pipeline' | 'log'>): Promise<void> {
  let committed = 0
  const stop = new AbortController()
  const stage = new StageComponent({
    ...options,
    name: unique('part'),
    connection,
    committed: (records, context) => {
      options.committed?.(records, context)
      committed += records
    },
    maxBatchSize: 10,
    pipeline: true,
    log,
  })
  try {
    await stage.start(stop.signal)
    await waitFor(() => committed === total, 30_000, `the ${total} records committed`)
    stop.abort()
    await stage.done
  } finally {
    restore()
  }
}

describe('a pipelined stage, at-least-once', () => {
  it('writes batch n + 1\'s outputs while batch n\'s offsets are being committed; commits stay in order, each after its outputs', async () => {
    const { input, output, groupId } = await pipedTopics('overlap', 100)
    // what happened, in order: outputs acknowledged, offset commits begun and ended (each commit
    // held until the next batch's outputs are acknowledged)
    const events: string[] = []
    const { producer, restore } = tracedAtLeastOnce(events, (offset) => untilNextOutputsAcked(events, offset, 100))
    await runPipelined(100, restore, {
      groupId,
      inputs: [input],
      handle: (batch) => batch.map((r) => ({ topic: output, key: r.key, value: r.value })),
      producer,
    })
    expectCommitsInOrder(events, 100)
    expectNextOutputsBeforeEachCommitEnded(events, 100)
    await expectCopiedOnceInOrder(groupId, input, output, 100)
  })

  it('writes every batch while one offset commit is under way, then commits them in one; each batch counted once, in order', async () => {
    const { input, output, groupId } = await pipedTopics('behind', 100)
    const events: string[] = []
    // the first commit is held until the last output is acknowledged: a loop whose writes waited
    // for the commit before could not get there (the wait gives up after 10 s, and the test fails)
    let first = true
    const { producer, restore } = tracedAtLeastOnce(events, async () => {
      if (!first) return
      first = false
      await waitFor(() => ackedAfter(events, 99), 10_000, 'every output acknowledged while the first commit waits').catch(() => {})
    })
    const contexts = contextsInOrder()
    await runPipelined(100, restore, {
      groupId,
      inputs: [input],
      handle: (batch, context) => {
        contexts.carry(batch, context)
        return batch.map((r) => ({ topic: output, key: r.key, value: r.value }))
      },
      committed: (records, context) => contexts.committed(records, context),
      producer,
    })
    expectCommitsInOrder(events, 100)
    const commits = events.filter((e) => e.startsWith('commit '))
    const firstEnded = events.findIndex((e) => e.startsWith('committed '))
    expect(events.findIndex((e) => e.startsWith('acked ') && e.split(' ').includes('v99')), events.join('\n')).toBeLessThan(firstEnded)
    // the first batch's commit, then one for all the batches written meanwhile
    expect(commits, events.join('\n')).toEqual([commits[0], 'commit 100'])
    expect(contexts.wrong).toEqual([])
    await expectCopiedOnceInOrder(groupId, input, output, 100)
  })

  it('with a punctuation that says when it is due, only a batch that brings periodic records waits for the commits under way; they count every batch before it', async () => {
    const { input, output, groupId } = await pipedTopics('due', 200)
    const events: string[] = []
    // each commit is held until the next batch's outputs are acknowledged: the commits lag behind the writes
    const { producer, restore } = tracedAtLeastOnce(events, (offset) => untilNextOutputsAcked(events, offset, 200))
    let committed = 0
    let handled = 0
    let tickedAt = 0
    let notDue = 0
    await runPipelined(200, restore, {
      groupId,
      inputs: [input],
      // the first output of each batch has a key of its own, so that the output topic shows where batches begin
      handle: (batch) => {
        handled++
        return batch.map((r, i) => ({ topic: output, key: i === 0 ? 'first' : r.key, value: r.value }))
      },
      committed: (records) => {
        committed += records
      },
      // a tick every third batch handled (and the last one at the stop): what was committed when it was made
      punctuation: {
        everyMs: 60_000,
        due: () => {
          const due = handled - tickedAt >= 3
          if (!due) notDue++
          return due
        },
        records: ({ final }) => {
          tickedAt = handled
          return [{ topic: output, key: 'tick', value: JSON.stringify({ committed, final }) }]
        },
      },
      producer,
    })
    expectCommitsInOrder(events, 200)
    expect(notDue).toBeGreaterThan(0)
    const written = await counterValue('kpipe_records_out_total', { topic: output })
    const records = await readUntil(connection, output, written)
    // In write order: batches' copies, a tick after some. A tick counts exactly the copies before
    // the batch it follows: every commit before that batch had ended (never fewer), and that
    // batch's own had not begun (never more).
    let copies = 0
    let batchStart = 0
    let ticks = 0
    for (const r of records) {
      const value = r.value!.toString()
      if (r.key?.toString() !== 'tick') {
        if (r.key?.toString() === 'first') batchStart = copies
        expect(value).toBe(`v${copies}`)
        copies++
        continue
      }
      const tick = JSON.parse(value) as { committed: number; final: boolean }
      if (tick.final) expect(tick.committed).toBe(copies)
      else {
        ticks++
        expect(tick.committed, `tick ${ticks}`).toBe(batchStart)
      }
    }
    expect(copies).toBe(200)
    expect(ticks).toBeGreaterThan(2)
  })
})

/**
 * The `count` transactional producers of an overlapped exactly-once stage, each transaction's steps
 * written to `events` in order: begun (`begin`), outputs acknowledged (`acked v3 v4`), its commit begun and ended
 * (`commit 20`, `committed 20`: the offset its transaction commits). `commit` may replace a
 * transaction's commit (it gets the real one and the offset).
 */
function tracedTransactions(count: number, events: string[], commit: (real: () => Promise<void>, offset: number) => Promise<void>, send?: (values: string[], sendsBefore: string[][]) => void) {
  const make = () => {
    const producer = createProducer(connection, { transactionalId: unique('tx') })
    const begin = producer.beginTransaction.bind(producer)
    producer.beginTransaction = (async (...args: Parameters<typeof begin>) => {
      events.push('begin')
      const tx = await begin(...args)
      let offset = 0
      // the values of this transaction's sends so far; `send` may refuse the next one by throwing
      const sent: string[][] = []
      const realSend = tx.send.bind(tx)
      tx.send = (async (...a: Parameters<typeof realSend>) => {
        const values = a[0].messages.map((m) => String(m.value))
        send?.(values, sent)
        sent.push(values)
        const result = await realSend(...a)
        events.push(`acked ${values.join(' ')}`)
        return result
      }) as typeof tx.send
      const addOffset = tx.addOffset.bind(tx)
      tx.addOffset = ((...a: Parameters<typeof addOffset>) => {
        offset = Math.max(offset, Number(a[0].offset) + 1)
        return addOffset(...a)
      }) as typeof tx.addOffset
      const realCommit = tx.commit.bind(tx) as () => Promise<void>
      tx.commit = (async () => {
        events.push(`commit ${offset}`)
        await commit(realCommit, offset)
        events.push(`committed ${offset}`)
      }) as typeof tx.commit
      return tx
    }) as typeof producer.beginTransaction
    return producer
  }
  return { producer: make(), moreProducers: Array.from({ length: count - 1 }, make) }
}

/** Everything `topic` holds before a last record written now, read_committed or not. */
async function readAll(topic: string, readCommitted = true): Promise<string[]> {
  const end = unique('end')
  const after = createProducer(connection)
  await after.send({ messages: [{ topic, key: 'end', value: end }] })
  await after.close()
  const records = await readUntil(connection, topic, (out) => out.some((r) => r.value?.toString() === end), { readCommitted })
  return records.map((r) => r.value!.toString()).filter((v) => v !== end)
}

/** The most transactions under way at once in tracedTransactions' `events` (begun, not yet committed). */
function mostUnderWay(events: string[]): number {
  let underWay = 0
  let most = 0
  for (const e of events) {
    if (e === 'begin') most = Math.max(most, ++underWay)
    else if (e.startsWith('committed')) underWay--
  }
  return most
}

/**
 * An exactly-once stage on `producers` (tracedTransactions) that copies `input` to `output` in
 * batches of 10, pipelined, run until `total` records are committed and then stopped.
 * `seen` gets the first offset of each batch before it is copied; the wait for the commits is 30 s unless `timeoutMs`.
 */
async function copyExactlyOnce(topics: { input: string; output: string; groupId: string }, producers: ReturnType<typeof tracedTransactions>, total: number, options: { batchesPerTransaction?: number; seen?: (first: bigint) => void; timeoutMs?: number } = {}): Promise<void> {
  let committed = 0
  const stop = new AbortController()
  const stage = new StageComponent({
    name: unique('part'),
    connection,
    groupId: topics.groupId,
    inputs: [topics.input],
    handle: (batch) => {
      options.seen?.(batch[0]!.offset)
      return batch.map((r) => ({ topic: topics.output, key: r.key, value: r.value }))
    },
    committed: (records) => {
      committed += records
    },
    ...producers,
    delivery: 'exactly-once',
    maxBatchSize: 10,
    ...(options.batchesPerTransaction ? { batchesPerTransaction: options.batchesPerTransaction } : {}),
    pipeline: true,
    log,
  })
  await stage.start(stop.signal)
  await waitFor(() => committed === total, options.timeoutMs ?? 30_000, `the ${total} records committed`)
  stop.abort()
  await stage.done
}

describe.each([2, 3])('a pipelined stage, exactly-once, %i producers: transactions overlap', (count) => {
  it("writes batch n + 1's outputs while batch n's transaction commits; commits stay in order, each after its outputs; every output once, in order", async () => {
    const topics = await pipedTopics('tx-overlap', 100)
    const { input, output, groupId } = topics
    const events: string[] = []
    // each commit held until the next batch's outputs are acknowledged
    const producers = tracedTransactions(count, events, async (real, offset) => {
      await untilNextOutputsAcked(events, offset, 100)
      await real()
    })
    await copyExactlyOnce(topics, producers, 100)
    expectCommitsInOrder(events.filter((e) => e !== 'begin'), 100)
    expectNextOutputsBeforeEachCommitEnded(events, 100)
    // as many transactions under way at once as there are producers, never more
    expect(mostUnderWay(events)).toBe(count)
    expect(await committedOffset(groupId, input)).toBe(100n)
    expect(await readAll(output)).toEqual(Array.from({ length: 100 }, (_, i) => `v${i}`))
  })

  it('two batches per transaction: a batch handled while the transaction before waits joins it, the last one commits alone once no batch comes; offsets in order, every output once, in order', async () => {
    const topics = await pipedTopics('tx-join', 50)
    const { input, output, groupId } = topics
    const events: string[] = []
    // the first transaction commits once the next one's first outputs are acknowledged
    const producers = tracedTransactions(count, events, async (real, offset) => {
      if (offset === 20) await untilNextOutputsAcked(events, offset, 50)
      await real()
    })
    // five batches: the fifth has no batch to join it, and commits when the loop finds no more input
    await copyExactlyOnce(topics, producers, 50, { batchesPerTransaction: 2 })
    expectCommitsInOrder(events.filter((e) => e !== 'begin'), 50)
    // the first transaction (two batches) ended after the next one's first outputs were acknowledged
    expect(events).toContain('committed 20')
    expect(ackedAfter(events.slice(0, events.indexOf('committed 20')), 20), events.join('\n')).toBe(true)
    const offsets = events.filter((e) => e.startsWith('commit ')).map((e) => Number(e.slice('commit '.length)))
    // fewer transactions than batches, none with more than two
    expect(offsets.length, offsets.join(' ')).toBeLessThan(5)
    offsets.forEach((offset, i) => expect(offset - (offsets[i - 1] ?? 0), offsets.join(' ')).toBeLessThanOrEqual(20))
    // the next transaction begins once the one before has written its outputs: two under way at most
    expect(mostUnderWay(events)).toBeLessThanOrEqual(2)
    expect(await committedOffset(groupId, input)).toBe(50n)
    expect(await readAll(output)).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`))
  })

  it.each([1, 2])("a transaction whose commit fails after the next one's outputs went out: both end uncommitted, and both are read again, every output once, in order (batches per transaction: %i)", async (batchesPerTransaction) => {
    const topics = await pipedTopics('tx-overlap-fail', 60)
    const { input, output, groupId } = topics
    const events: string[] = []
    let failed = false
    // the commit of offsets 10–19 fails once, after the next batch's outputs are acknowledged
    const producers = tracedTransactions(count, events, async (real, offset) => {
      if (offset !== 20 || failed) return real()
      await waitFor(() => events.some((e) => e.startsWith('acked v20')), 30_000, 'the outputs of the next batch acknowledged')
      failed = true
      throw new Error('the commit was refused (a test)')
    })
    const handledFirsts: bigint[] = []
    await copyExactlyOnce(topics, producers, 60, { batchesPerTransaction, seen: (first) => handledFirsts.push(first), timeoutMs: 60_000 })
    expect(failed).toBe(true)
    // both batches were read again: the failed one, and the one whose outputs had gone out behind it
    expect(handledFirsts.filter((f) => f === 10n)).toHaveLength(2)
    expect(handledFirsts.filter((f) => f === 20n)).toHaveLength(2)
    expect(await committedOffset(groupId, input)).toBe(60n)
    expect(await readAll(output)).toEqual(Array.from({ length: 60 }, (_, i) => `v${i}`))
    // the aborted outputs are in the log, hidden from read_committed: both batches' were written twice
    const all = await readAll(output, false)
    for (const v of ['v10', 'v20']) expect(all.filter((x) => x === v), v).toHaveLength(2)
  }, 90_000)
})

describe.each([2, 3])('a pipelined stage, exactly-once, %i producers, three batches per transaction', (count) => {
  it("a send that fails after the transaction's first batch is acknowledged: not tried again in place (its outputs are let go), the batches are read again, every output once, in order", async () => {
    const topics = await pipedTopics('tx-let-go', 60)
    const { input, output, groupId } = topics
    const events: string[] = []
    // the first transaction's second batch: its send is refused once
    let failedFirst: number | undefined
    const producers = tracedTransactions(count, events, (real) => real(), (values, before) => {
      if (failedFirst !== undefined || before.length !== 1) return
      failedFirst = Number(before[0]![0]!.slice(1))
      throw new Error('the send was refused (a test)')
    })
    const handledFirsts: bigint[] = []
    await copyExactlyOnce(topics, producers, 60, { batchesPerTransaction: 3, seen: (first) => handledFirsts.push(first), timeoutMs: 60_000 })
    expect(failedFirst).toBeDefined()
    // the batch whose outputs were acknowledged was handled again: the session read it again,
    // where a retry in place would have written its outputs once more without handling it
    expect(handledFirsts.filter((f) => f === BigInt(failedFirst!)), handledFirsts.join(' ')).toHaveLength(2)
    expect(await committedOffset(groupId, input)).toBe(60n)
    expect(await readAll(output)).toEqual(Array.from({ length: 60 }, (_, i) => `v${i}`))
    // its outputs were written twice, the first time in the aborted transaction
    const all = await readAll(output, false)
    expect(all.filter((x) => x === `v${failedFirst}`)).toHaveLength(2)
  }, 90_000)
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
    expect(await groupCommittedOffsets(connection, groupId, input)).toEqual([-1n])
  })
})

describe('a stage that reads less ahead', () => {
  /** The sizes of the batches a stage (batches of up to 1,000) takes from an input of 2,000 small records, written 20 to a record batch, with `readAhead`; every record copied once, in order. */
  async function batchSizes(readAhead?: { fetchBytes?: number; records?: number }): Promise<number[]> {
    const input = unique('ahead-in')
    const output = unique('ahead-out')
    await ensureTopics(connection, [input, output].map((topic) => ({ name: topic, partitions: 1, replicationFactor: 1 })))
    // a fetch returns whole record batches: small ones, so that its byte limit is what bounds it
    const producer = createProducer(connection)
    for (let i = 0; i < 2000; i += 20) await producer.send({ messages: Array.from({ length: 20 }, (_, j) => ({ topic: input, key: `k${i + j}`, value: `v${i + j}` })) })
    await producer.close()
    const sizes: number[] = []
    const stop = new AbortController()
    const writer = createProducer(connection)
    const groupId = unique('ahead')
    const stage = new StageComponent({
      name: unique('part'),
      connection,
      groupId,
      inputs: [input],
      handle: (batch) => {
        sizes.push(batch.length)
        return batch.map((r) => ({ topic: output, key: r.key, value: r.value }))
      },
      producer: writer,
      maxBatchSize: 1000,
      ...(readAhead ? { readAhead } : {}),
      log,
    })
    await stage.start(stop.signal)
    await waitFor(() => stage.loop?.records === 2000, 30_000, 'the 2,000 records committed')
    stop.abort()
    await stage.done
    await expectCopiedOnceInOrder(groupId, input, output, 2000)
    return sizes
  }

  it('takes batches of at most its stream room and one fetch, and copies every record once, in order', async () => {
    // by default the first fetch (2 MiB) brings the whole input: the first batch is a full one
    expect((await batchSizes())[0]).toBe(1000)
    // room for 50 records and fetches of 4 KiB (about ten record batches of 20 of these records):
    // the stream stops fetching once it holds 50, so no batch holds more than 49 and one fetch
    const sizes = await batchSizes({ fetchBytes: 4096, records: 50 })
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(2000)
    expect(Math.max(...sizes)).toBeLessThan(500)
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
