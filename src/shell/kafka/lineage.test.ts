import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import * as client from '@platformatic/kafka'
import { describe, expect, inject, it } from 'vitest'
import { correctProducerSource, correctRecordsSource, LINEAGE_MARK } from './client-correction.ts'
import { type KafkaConnection } from './connection.ts'
import { isLineage, Lineage, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC } from './lineage.ts'
import { createProducer, type Compression } from './producer.ts'
import { encodeRecordsBatch } from './record-batch-encoder.ts'
import { lineageHeaders } from './records.ts'
import { ensureTopics } from './topics.ts'
import { readUntil } from '../../../test/support/kafka.ts'
import { clientModuleSource } from '../../../test/support/client-source.ts'

/**
 * A record's lineage is passed by the client's producer to kpipe's encoder, which writes the three
 * headers' bytes (src/shell/kafka/lineage.ts): the bytes must be those the client wrote from the
 * Map of the contract's text.
 */
type Options = Parameters<typeof client.createRecordsBatch>[1]
type Message = { topic: string; partition: number; key: Buffer; value: Buffer; headers: Lineage | Map<Buffer, Buffer>; timestamp: bigint }

const { createRecordsBatch, crc32c } = client
/** the client's own encoder, kept beside kpipe's by the load hook */
const clientCreateRecordsBatch = (client as unknown as { clientCreateRecordsBatch: typeof createRecordsBatch }).clientCreateRecordsBatch

/** The headers as the client wrote them for a Map of the contract's text (SPEC.md). */
const asText = (l: Lineage) => new Map([
  [Buffer.from(SOURCE_TOPIC), Buffer.from(l.topic)],
  [Buffer.from(SOURCE_PARTITION), Buffer.from(String(l.partition))],
  [Buffer.from(SOURCE_OFFSET), Buffer.from(l.offset.toString())],
])

/** Records of a batch, one per lineage, and the same records with the headers as text. */
function batchOf(lineages: Lineage[]): { withLineage: Message[]; withText: Message[] } {
  const withLineage = lineages.map((headers, i): Message => ({ topic: 't', partition: 0, key: Buffer.from(`k${i}`), value: Buffer.from('v'.repeat(i % 40)), headers, timestamp: 1_733_000_000_000n + BigInt(i) }))
  return { withLineage, withText: withLineage.map((m) => ({ ...m, headers: asText(m.headers as Lineage) })) }
}

const OFFSETS = [0n, 1n, 9n, 10n, 99n, 100n, 999_999n, 1_000_000n, 2n ** 31n, 2n ** 32n + 7n, 10n ** 15n - 1n, 10n ** 15n, 9_007_199_254_740_991n]

describe('lineage headers', () => {
  it('read like the Map of the three headers they stand for, and are told apart by their brand', () => {
    const lineage = lineageHeaders({ topic: 'user-login', partition: 2, offset: 1_234_567n })
    expect(lineage.size).toBe(3)
    expect([...lineage.keys()]).toEqual([SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET])
    expect(new Map(lineage)).toEqual(new Map([[SOURCE_TOPIC, Buffer.from('user-login')], [SOURCE_PARTITION, Buffer.from('2')], [SOURCE_OFFSET, Buffer.from('1234567')]]))
    expect(lineage.get(SOURCE_OFFSET)?.toString()).toBe('1234567')
    expect(lineage.get('replay-id')).toBeUndefined()
    expect([lineage.has(SOURCE_PARTITION), lineage.has('replay-id')]).toEqual([true, false])
    expect(isLineage(lineage)).toBe(true)
    for (const other of [new Map(lineage), { topic: 'user-login', partition: 2, offset: 1n }, {}, null, undefined, SOURCE_TOPIC]) expect(isLineage(other)).toBe(false)
  })

  it("are written as exactly the client's bytes for every kind of topic, partition and offset", () => {
    const lineages: Lineage[] = []
    for (const [n, offset] of OFFSETS.entries()) {
      for (const partition of [0, 7, 10, 4095, 70_000, 2 ** 31 - 1]) lineages.push(new Lineage(n % 2 ? 'logins-ü' : 'user-login', partition, offset))
    }
    lineages.push(new Lineage('t'.repeat(249), 1, 5n))
    for (let i = 0n; i < 3000n; i++) lineages.push(new Lineage('user-login', Number(i % 3n), i * 7_919n + (i % 13n) * 10n ** (i % 15n)))
    const options = { producerId: 12n, producerEpoch: 1, transactionalId: 'tx', sequences: { getWithDefault: () => 40 } } as unknown as Options
    for (let from = 0; from < lineages.length; from += 500) {
      const { withLineage, withText } = batchOf(lineages.slice(from, from + 500))
      const ours = encodeRecordsBatch(withLineage, options as never, (b) => crc32c(b))
      expect(ours).toBeDefined()
      expect(ours!.equals(clientCreateRecordsBatch(withText as never, options).buffer)).toBe(true)
      // in front of the client, as the producer calls it
      expect(createRecordsBatch(batchOf(lineages.slice(from, from + 500)).withLineage as never, options).buffer.equals(ours!)).toBe(true)
    }
  })

  it('are made the bytes the client writes in a batch the client encodes itself', () => {
    const cases: [string, Lineage[], Options][] = [
      ['compressed', [new Lineage('user-login', 1, 42n), new Lineage('user-login', 2, 43n)], { compression: 'gzip' } as Options],
      ['an offset beyond 2^53', [new Lineage('user-login', 0, 9_007_199_254_740_992n), new Lineage('user-login', 0, 2n ** 63n - 1n)], {}],
    ]
    for (const [what, lineages, options] of cases) {
      expect(encodeRecordsBatch(batchOf(lineages).withLineage, options as never, (b) => crc32c(b)), what).toBeUndefined()
      const ours = createRecordsBatch(batchOf(lineages).withLineage as never, options).buffer
      expect(ours.equals(clientCreateRecordsBatch(batchOf(lineages).withText as never, options).buffer), what).toBe(true)
    }
  })

  it('pass through a producer corrected once, which refuses a send it does not know, and are made bytes where the client encodes', () => {
    const source = clientModuleSource('clients/producer/producer.js')
    const corrected = correctProducerSource(source, 'file:///lineage.js')
    expect(corrected).toContain(LINEAGE_MARK)
    expect(correctProducerSource(corrected, 'file:///lineage.js')).toBe(corrected)
    expect(() => correctProducerSource(source.replace('const serializedHeaders = new Map();', 'const serializedHeaders = new Map([]);'), 'file:///lineage.js')).toThrow(/is not @platformatic\/kafka 2\.12\.1/)
    // nor a records module without the one place the client encodes records itself
    const records = clientModuleSource('protocol/records.js')
    expect(correctRecordsSource(records, 'file:///encoder.js')).toContain('function prepareRecordsBatch(messages, options) {\n    kpipeClientHeaders(messages);')
    expect(() => correctRecordsSource(records.replace('function prepareRecordsBatch(messages, options) {', 'function prepareRecordsBatch(messages, options = {}) {'), 'file:///encoder.js')).toThrow(/is not @platformatic\/kafka 2\.12\.1/)
  })

  it('are not sent by a process whose client lacks the corrections: its producers are refused', () => {
    // without them the client would write a lineage's three headers with empty values, and no error
    const producerModule = fileURLToPath(new URL('../../../dist/shell/kafka/producer.js', import.meta.url))
    const script = `
      const { createProducer } = await import(${JSON.stringify(producerModule)})
      try { createProducer({ bootstrapBrokers: ['127.0.0.1:9'], clientId: 'any' }) }
      catch (error) { console.log(error.message); process.exit(3) }`
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })
    expect(child.stdout).toContain("lacks kpipe's lineage and record-batch corrections")
    expect(child.status).toBe(3)
  })

  it.each<Compression>(['none', 'gzip', 'lz4', 'snappy', 'zstd'])('reach a real broker as the contract\'s text, beside records with headers of their own (compression: %s)', async (compression) => {
    const connection: KafkaConnection = { bootstrapBrokers: [inject('kafkaBrokers')], clientId: 'kpipe-test' }
    const topic = `lineage-${randomUUID()}`
    await ensureTopics(connection, [{ name: topic, partitions: 1, replicationFactor: 1 }])
    const producer = createProducer(connection, { compression })
    const sent = Array.from({ length: 1500 }, (_, i) => ({
      key: `k${i}`,
      value: `v${i}`,
      headers: i % 5 === 4 ? new Map([['n', Buffer.from(String(i))]]) : lineageHeaders({ topic: 'user-login', partition: i % 3, offset: BigInt(i) * 1_000_003n }),
    }))
    try {
      await producer.send({ messages: sent.map((m) => ({ topic, partition: 0, ...m })) })
    } finally {
      await producer.close()
    }
    const read = await readUntil(connection, topic, sent.length)
    const text = (headers: Iterable<[string, Buffer]>) => [...headers].map(([name, value]) => [name, value.toString('utf8')])
    expect(read.map((r) => [r.key?.toString(), r.value?.toString(), text(r.headers)])).toEqual(sent.map((m) => [m.key, m.value, text(m.headers)]))
  })
})
