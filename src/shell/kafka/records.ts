import type { Message, MessageToProduce, Serializers, Deserializers } from '@platformatic/kafka'

/** A record as the consumer loop hands it to a handler: key and value as raw bytes. */
export type ConsumedRecord = Message<Buffer | undefined, Buffer | undefined, string, Buffer>

/** A record a handler asks the loop to produce. Strings are written as UTF-8. */
export type OutputRecord = MessageToProduce<string | Buffer, string | Buffer, string, string | Buffer>

const toBuffer = (data?: string | Buffer) => (data === undefined || data === null ? undefined : typeof data === 'string' ? Buffer.from(data) : data)

/** Header names are a handful of constants (the lineage headers): encoded once, not once per record. */
const headerNames = new Map<string, Buffer>()
const headerNameBuffer = (name?: string) => {
  if (name === undefined || name === null) return undefined
  let bytes = headerNames.get(name)
  if (bytes === undefined) {
    bytes = Buffer.from(name)
    if (headerNames.size < 256) headerNames.set(name, bytes)
  }
  return bytes
}

export const outputSerializers: Serializers<string | Buffer, string | Buffer, string, string | Buffer> = {
  key: toBuffer,
  value: toBuffer,
  headerKey: headerNameBuffer,
  headerValue: toBuffer,
}

export const rawDeserializers: Deserializers<Buffer | undefined, Buffer | undefined, string, Buffer> = {
  key: (data) => data,
  value: (data) => data,
  headerKey: (data) => data?.toString('utf8'),
  headerValue: (data) => data,
}

/** The lineage header names (SPEC.md): the contract `kpipe audit`, replay and the dashboard read. */
export const SOURCE_TOPIC = 'source-topic'
export const SOURCE_PARTITION = 'source-partition'
export const SOURCE_OFFSET = 'source-offset'

/**
 * The lineage headers every derived record carries, as the bytes the producer writes. Hot path
 * (one call per output record): a Map is what the client iterates (a plain object is copied into
 * one per send), the topic's and partition's bytes are made once per topic and partition, and the
 * offset's decimal digits are written straight into a shared slab instead of through a string.
 */
export function lineageHeaders(source: Pick<ConsumedRecord, 'topic' | 'partition' | 'offset'>): Map<string, Buffer> {
  // set one by one: a Map built from [name, value] pairs allocates four arrays per record
  return new Map<string, Buffer>()
    .set(SOURCE_TOPIC, topicBytes(source.topic))
    .set(SOURCE_PARTITION, partitionBytes(source.topic, source.partition))
    .set(SOURCE_OFFSET, offsetBytes(source.offset))
}

const topicBytesCache = new Map<string, Buffer>()
function topicBytes(topic: string): Buffer {
  let bytes = topicBytesCache.get(topic)
  if (bytes === undefined) {
    bytes = Buffer.from(topic)
    if (topicBytesCache.size < 1024) topicBytesCache.set(topic, bytes)
  }
  return bytes
}

const partitionBytesCache: Buffer[] = []
function partitionBytes(_topic: string, partition: number): Buffer {
  if (partition >= 0 && partition < 4096 && Number.isInteger(partition)) return (partitionBytesCache[partition] ??= Buffer.from(String(partition)))
  return Buffer.from(String(partition))
}

/** Offsets' digits are carved out of one slab (like Buffer.from's pool, without the string in between). */
const SLAB_BYTES = 64 * 1024
let slab = Buffer.allocUnsafe(SLAB_BYTES)
let slabUsed = 0

function offsetBytes(offset: bigint): Buffer {
  // below 2^53 the digits are written from a number; beyond (never in practice), through a string
  if (offset < 0n || offset > 9_007_199_254_740_991n) return Buffer.from(offset.toString())
  let value = Number(offset)
  let digits = 1
  // % and the division of a multiple of 10 are exact below 2^53 (Math.floor(v / 10) is not near it)
  for (let v = value; v >= 10; v = (v - (v % 10)) / 10) digits++
  if (slabUsed + digits > SLAB_BYTES) {
    slab = Buffer.allocUnsafe(SLAB_BYTES)
    slabUsed = 0
  }
  const start = slabUsed
  for (let i = start + digits - 1; i >= start; i--) {
    const digit = value % 10
    slab[i] = 48 + digit
    value = (value - digit) / 10
  }
  slabUsed += digits
  return slab.subarray(start, start + digits)
}

export function headerText(record: ConsumedRecord, name: string): string | undefined {
  return record.headers.get(name)?.toString('utf8')
}
