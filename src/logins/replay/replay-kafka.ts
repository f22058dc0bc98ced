import { randomUUID } from 'node:crypto'
import { Admin, Consumer, FetchIsolationLevels, type Message, type MessagesStream } from '@platformatic/kafka'
import { clientOptions, type KafkaConnection } from '../../shell/kafka/connection.ts'
import { beginTransaction, createProducer, type KpipeProducer } from '../../shell/kafka/producer.ts'
import { rawDeserializers, type ConsumedRecord } from '../../shell/kafka/records.ts'
import { sendChunks } from '../../shell/kafka/consumer-loop.ts'
import type { SourceCoordinates } from '../core/error-record.ts'
import { coordinatesText } from './parked-record.ts'
import type { OriginalLookup, OriginalRecord } from './replay-plan.ts'
import type { ParkedConsumed, PartitionPosition, ReplayCopy, ReplayIo } from './run-replay.ts'

/** The consumer group that holds a replay's progress, and the transactional id of its producer. */
export const replayGroupId = (replayId: string) => `kpipe-replay-${replayId}`
/** The throwaway group of the reader of the parking topic, one per run: `kpipe-replay-reader-<uuid>`, deleted after the read. */
export const REPLAY_READER_PREFIX = 'kpipe-replay-reader-'

const IS_CONTROL = 1 << 5
const OFFSET_OUT_OF_RANGE = 1

type RawConsumer = Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>

/**
 * All of a replay's Kafka: the whole wiring of `kpipe logins replay` to the client is this file.
 * Progress is the committed offsets of the group `kpipe-replay-<id>` on the parking topic. The
 * group is never joined: offsets are committed inside the producer's transaction as a
 * "simple" group member (generation -1), together with the copies, so a batch's copies and its
 * progress become visible together or not at all. The transactional id is the group's name: a
 * rerun's producer fences a run that is still alive (or was killed mid-transaction) and aborts
 * its open transaction before the rerun reads where the replay stands.
 */
export class KafkaReplayIo implements ReplayIo {
  readonly #connection: KafkaConnection
  readonly #topic: string
  readonly #groupId: string
  readonly #dryRun: boolean
  readonly #batchSize: number
  readonly #admin: Admin
  /** the progress group's client: committed offsets, offsets, metadata and targeted fetches; never joins */
  readonly #group: RawConsumer
  #producer: KpipeProducer | undefined
  #topics: Set<string> | undefined

  constructor(connection: KafkaConnection, options: { topic: string; replayId: string; dryRun: boolean; batchSize?: number }) {
    this.#batchSize = options.batchSize ?? 500
    this.#connection = connection
    this.#topic = options.topic
    this.#groupId = replayGroupId(options.replayId)
    this.#dryRun = options.dryRun
    this.#admin = new Admin(clientOptions(connection, `${connection.clientId}-admin`))
    this.#group = new Consumer({ ...clientOptions(connection, `${connection.clientId}-progress`), groupId: this.#groupId, deserializers: rawDeserializers })
  }

  async topicExists(topic: string): Promise<boolean> {
    this.#topics ??= new Set(await this.#admin.listTopics())
    return this.#topics.has(topic)
  }

  async positions(): Promise<{ positions: PartitionPosition[]; handledBefore: number }> {
    if (!this.#dryRun) {
      this.#producer = createProducer(this.#connection, { transactionalId: this.#groupId, clientId: `${this.#connection.clientId}-producer` })
      // initialising the transactional id aborts what an earlier run left open, before its offsets are read
      const tx = await beginTransaction(this.#producer)
      await tx.cancel()
    }
    const starts = (await this.#group.listOffsets({ topics: [this.#topic], timestamp: -2n })).get(this.#topic) ?? []
    const partitions = starts.map((_, p) => p)
    const committed = (await this.#group.listCommittedOffsets({ topics: [{ topic: this.#topic, partitions }] })).get(this.#topic) ?? []
    let handledBefore = 0
    const positions = partitions.map((partition) => {
      const start = starts[partition]!
      const done = committed[partition] ?? -1n
      if (done > start) handledBefore += Number(done - start)
      return { partition, next: done > start ? done : start }
    })
    return { positions, handledBefore }
  }

  async read(positions: PartitionPosition[], onBatch: (batch: ParkedConsumed[]) => Promise<boolean>): Promise<void> {
    const topic = this.#topic
    const ends = (await this.#group.listOffsets({ topics: [topic], isolationLevel: FetchIsolationLevels.READ_COMMITTED })).get(topic) ?? []
    const pending = new Set(positions.filter((p) => p.next < (ends[p.partition] ?? 0n)).map((p) => p.partition))
    if (pending.size === 0) return
    // a reader of its own (a throwaway group that never commits), started at the replay's positions
    const readerGroup = `${REPLAY_READER_PREFIX}${randomUUID()}`
    const reader: RawConsumer = new Consumer({
      ...clientOptions(this.#connection, `${this.#connection.clientId}-reader`),
      groupId: readerGroup,
      deserializers: rawDeserializers,
      sessionTimeout: 10_000,
      heartbeatInterval: 3000,
    })
    let stream: MessagesStream<Buffer | undefined, Buffer | undefined, string, Buffer> | undefined
    try {
      stream = await reader.consume({
        topics: [topic],
        mode: 'manual',
        offsets: positions.map((p) => ({ topic, partition: p.partition, offset: p.next })),
        autocommit: false,
        maxWaitTime: 200,
        highWaterMark: this.#batchSize * 2,
        isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      })
      let failure: unknown
      stream.on('error', (error: unknown) => (failure = error))
      stream.on('readable', () => {})
      const s = stream
      const reached = () => {
        for (const partition of pending) {
          const next = s.offsetsToFetch.get(`${topic}:${partition}`)
          if (next !== undefined && next >= ends[partition]!) pending.delete(partition)
        }
        return pending.size === 0
      }
      for (;;) {
        if (failure) throw failure
        const batch: ParkedConsumed[] = []
        let record: ConsumedRecord | null
        while (batch.length < this.#batchSize && (record = s.read() as ConsumedRecord | null) !== null) {
          if (record.topic === topic && record.offset < (ends[record.partition] ?? 0n)) batch.push(record)
        }
        if (batch.length > 0) {
          if (!(await onBatch(batch))) return
          continue
        }
        if (reached() && s.readableLength === 0) return
        if (s.destroyed || s.readableEnded) throw new Error(`reading ${topic} ended early`)
        await new Promise<void>((resolve) => {
          const wake = () => {
            s.off('readable', wake)
            s.off('fetch', wake)
            s.off('error', wake)
            s.off('close', wake)
            resolve()
          }
          s.on('readable', wake)
          s.on('fetch', wake)
          s.on('error', wake)
          s.on('close', wake)
        })
      }
    } finally {
      if (stream) await stream.close().catch(() => {})
      await new Promise<void>((resolve) => reader.close(true, () => resolve()))
      // left, empty, the group would stay listed until the broker expires it; a killed run leaves it
      await this.#admin.deleteGroups({ groups: [readerGroup] }).catch(() => {})
    }
  }

  /**
   * Targeted fetches of the original inputs: per partition, one fetch at the lowest offset
   * still wanted, taking every wanted offset the answer covers. An offset below the log start
   * (or answered OFFSET_OUT_OF_RANGE because retention just deleted it) is gone.
   */
  async originals(coordinates: SourceCoordinates[]): Promise<Map<string, OriginalLookup>> {
    const found = new Map<string, OriginalLookup>()
    const byPartition = new Map<string, { topic: string; partition: number; offsets: bigint[] }>()
    for (const c of coordinates) {
      const key = `${c.topic}\0${c.partition}`
      let entry = byPartition.get(key)
      if (!entry) byPartition.set(key, (entry = { topic: c.topic, partition: c.partition, offsets: [] }))
      entry.offsets.push(c.offset)
    }
    for (const { topic, partition, offsets } of byPartition.values()) {
      const gone = (offset: bigint) => found.set(coordinatesText({ topic, partition, offset }), { found: false })
      if (!(await this.topicExists(topic))) {
        offsets.forEach(gone)
        continue
      }
      const metadata = await this.#group.metadata({ topics: [topic] })
      const meta = metadata.topics.get(topic)
      if (!meta || partition >= meta.partitionsCount) {
        offsets.forEach(gone)
        continue
      }
      const start = (await this.#group.listOffsets({ topics: [topic], partitions: { [topic]: [partition] }, timestamp: -2n })).get(topic)?.[partition] ?? 0n
      const wanted = [...new Set(offsets)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      const wantedSet = new Set(wanted)
      let i = 0
      while (i < wanted.length) {
        const from = wanted[i]!
        if (from < start) {
          gone(from)
          i++
          continue
        }
        const response = await this.#group.fetch({
          node: meta.partitions[partition]!.leader,
          topics: [{ topicId: meta.id, partitions: [{ partition, fetchOffset: from, partitionMaxBytes: 1024 * 1024, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
          maxWaitTime: 0,
          isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED,
        })
        const answer = response.responses[0]?.partitions.find((p) => p.partitionIndex === partition)
        if (answer?.errorCode === OFFSET_OUT_OF_RANGE) {
          gone(from)
          i++
          continue
        }
        if (!answer || answer.errorCode !== 0) throw new Error(`fetching ${topic}/${partition} at ${from} failed with error code ${answer?.errorCode ?? 'none'}`)
        let last = from - 1n
        for (const batch of answer.records ?? []) {
          if (batch.attributes & IS_CONTROL) {
            last = batch.firstOffset + BigInt(batch.lastOffsetDelta)
            continue
          }
          for (const r of batch.records) {
            const offset = batch.firstOffset + BigInt(r.offsetDelta)
            if (offset > last) last = offset
            const key = coordinatesText({ topic, partition, offset })
            if (wantedSet.has(offset) && !found.has(key)) found.set(key, { found: true, record: originalRecord(r) })
          }
        }
        if (last < from) {
          // nothing at or after `from` up to the end: no such record (any more)
          gone(from)
          i++
          continue
        }
        // every wanted offset the answer covered is settled: found, or not in the log (compacted)
        while (i < wanted.length && wanted[i]! <= last) {
          if (!found.has(coordinatesText({ topic, partition, offset: wanted[i]! }))) gone(wanted[i]!)
          i++
        }
      }
    }
    return found
  }

  async commit(copies: ReplayCopy[], positions: PartitionPosition[]): Promise<void> {
    const producer = this.#producer
    if (!producer) throw new Error('a dry run commits nothing')
    const coordinatorId = await this.#group.findGroupCoordinator()
    const tx = await beginTransaction(producer)
    try {
      await tx.addConsumer(this.#group)
      for (const chunk of sendChunks(copies)) await tx.send({ messages: chunk })
      // one partition after another: the client drops an addOffset asked while another is under way (docs/upstream/concurrent-add-offset.md)
      for (const p of positions) {
        // TxnOffsetCommit as a member of no generation: the group is only ever used for its offsets
        const position = {
          topic: this.#topic, partition: p.partition, offset: p.next - 1n,
          metadata: { consumer: { groupId: this.#groupId, generationId: -1, memberId: '', coordinatorId } },
        } as unknown as Message<Buffer, Buffer, Buffer, Buffer>
        await tx.addOffset(position)
      }
      await tx.commit()
    } catch (error) {
      if (!tx.completed) await tx.abort().catch(() => {})
      throw error
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#producer?.close(), new Promise<void>((resolve) => this.#group.close(true, () => resolve())), this.#admin.close()])
  }
}

function originalRecord(r: { key: Buffer | null; value: Buffer | null; headers: [Buffer | null, Buffer | null][] }): OriginalRecord {
  const headers = new Map<string, Buffer>()
  for (const [k, v] of r.headers) if (k && v) headers.set(k.toString('utf8'), v)
  return { key: r.key, value: r.value, headers }
}
