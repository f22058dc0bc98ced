/**
 * A record batch (Kafka's message format v2, uncompressed) written into one Buffer, for
 * @platformatic/kafka's `createRecordsBatch` (put in front of it by
 * src/shell/kafka/client-correction.ts, in the CLI's bundle and as the client loads under the
 * tests; docs/decisions.md, "The client's record-batch encoding").
 *
 * The client builds every record with a Writer of its own: a Buffer per varint, an array entry
 * per field, then concatenates the batch twice (once for the CRC, once for the request). That was
 * 13 % of the processor's CPU profile and a good part of its garbage. This writes the same bytes
 * in two passes over the batch (sizes, then bytes) into a single Buffer. It answers `undefined`
 * for any batch it does not reproduce exactly (compression, empty, a key, value or header that
 * is not bytes, headers not a Map, a timestamp far from the batch's first), and the client's own
 * encoder runs instead.
 *
 * A record's lineage (src/shell/kafka/lineage.ts), which the corrected producer passes through
 * in place of its serialised headers, is written here from its topic, partition and offset; where
 * the client encodes records itself (a batch left to it, every compressed batch), it is first made
 * the Map of bytes the client writes (clientHeaders).
 *
 * This module must not import the client: the client's records module imports it.
 */
import { decimalDigits, isLineage, type Lineage, SOURCE_OFFSET_BYTES, SOURCE_PARTITION_BYTES, SOURCE_TOPIC_BYTES, topicBytes, writableAsDecimal, writeDecimal } from './lineage.ts'

/** What the client passes to `createRecordsBatch` for each record (after its serialisers). */
interface BatchMessage {
  key?: unknown
  value?: unknown
  headers?: unknown
  timestamp?: unknown
  topic?: unknown
  partition?: unknown
}

/** The options of `createRecordsBatch` this encoder reads. */
interface BatchOptions {
  compression?: string
  producerId?: bigint
  producerEpoch?: number
  partitionLeaderEpoch?: number
  transactionalId?: string | null
  sequences?: { getWithDefault(key: string, fallback: number): number }
}

const CURRENT_RECORD_VERSION = 2
const IS_TRANSACTIONAL = 1 << 4
/** bytes before the first record: firstOffset … records count */
const BATCH_HEADER_SIZE = 61
/** the CRC covers the batch from its attributes on */
const CRC_START = 21
/** the client's own zigzag of 64-bit deltas agrees with Kafka's for these; others go to the client */
const MAX_DELTA = 2n ** 30n

/** per record: the size of its body (everything after its own length) */
let bodySizes = new Int32Array(1024)

function zigzag(value: number): number {
  return ((value << 1) ^ (value >> 31)) >>> 0
}

function varIntSize(value: number): number {
  const v = zigzag(value)
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5
}

function writeVarInt(buffer: Buffer, position: number, value: number): number {
  let v = zigzag(value)
  while (v > 0x7f) {
    buffer[position++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  buffer[position++] = v
  return position
}

/** null/undefined is written as length -1 */
function bytesSize(bytes: Uint8Array | null | undefined): number {
  return bytes == null ? 1 : varIntSize(bytes.length) + bytes.length
}

function writeBytes(buffer: Buffer, position: number, bytes: Uint8Array | null | undefined): number {
  if (bytes == null) return writeVarInt(buffer, position, -1)
  position = writeVarInt(buffer, position, bytes.length)
  buffer.set(bytes, position)
  return position + bytes.length
}

function isBytesOrNull(value: unknown): value is Uint8Array | null | undefined {
  return value == null || value instanceof Uint8Array
}

/*
 * Headers are walked with Map.forEach and callbacks made once, their state here: a for…of over
 * the Map allocated an entry array per header, most of the encoder's garbage
 * (docs/benchmarks.md, "Memory, again").
 */
let headerBytes = 0
let headersOk = true
const EMPTY = Buffer.alloc(0)
let target: Buffer = EMPTY
let at = 0

function sizeHeader(value: unknown, key: unknown): void {
  if (!isBytesOrNull(key) || !isBytesOrNull(value)) headersOk = false
  else headerBytes += bytesSize(key) + bytesSize(value)
}

function writeHeader(value: Uint8Array | null, key: Uint8Array | null): void {
  at = writeBytes(target, at, key)
  at = writeBytes(target, at, value)
}

/*
 * A lineage's bytes are the same up to its offset's digits for every record of one source
 * partition: the count (3), `source-topic` and the topic, `source-partition` and the partition's
 * digits, `source-offset`'s name. They are made once per source partition and copied whole; only
 * the offset's length and digits are written per record.
 */
const lineagePrefixes = new Map<string, Buffer[]>()
/** partitions above it (Kafka's are int32, a process reads a few) are not kept */
const MAX_KEPT_PARTITION = 0xffff

function lineagePrefix(lineage: Lineage): Buffer {
  const { topic, partition } = lineage
  let byPartition = lineagePrefixes.get(topic)
  if (byPartition === undefined) {
    byPartition = []
    if (lineagePrefixes.size < 1024) lineagePrefixes.set(topic, byPartition)
  }
  const kept = byPartition[partition]
  if (kept !== undefined) return kept
  const partitionDigits = decimalDigits(partition)
  const topicName = topicBytes(topic)
  const prefix = Buffer.alloc(1 + bytesSize(SOURCE_TOPIC_BYTES) + bytesSize(topicName) + bytesSize(SOURCE_PARTITION_BYTES) + 1 + partitionDigits + bytesSize(SOURCE_OFFSET_BYTES))
  let position = writeVarInt(prefix, 0, 3)
  position = writeBytes(prefix, position, SOURCE_TOPIC_BYTES)
  position = writeBytes(prefix, position, topicName)
  position = writeBytes(prefix, position, SOURCE_PARTITION_BYTES)
  position = writeVarInt(prefix, position, partitionDigits)
  position = writeDecimal(prefix, position, partition, partitionDigits)
  writeBytes(prefix, position, SOURCE_OFFSET_BYTES)
  if (partition <= MAX_KEPT_PARTITION) byPartition[partition] = prefix
  return prefix
}

/** The lineage headers' part of a record body, or -1 when its partition or offset is not one writeDecimal writes. */
function lineageSize(lineage: Lineage): number {
  if (!writableAsDecimal(lineage)) return -1
  // then the offset's length (at most 16 digits: one byte) and digits
  return lineagePrefix(lineage).length + 1 + decimalDigits(Number(lineage.offset))
}

function writeLineage(buffer: Buffer, position: number, lineage: Lineage): number {
  const prefix = lineagePrefix(lineage)
  buffer.set(prefix, position)
  position += prefix.length
  const offset = Number(lineage.offset)
  const offsetDigits = decimalDigits(offset)
  position = writeVarInt(buffer, position, offsetDigits)
  return writeDecimal(buffer, position, offset, offsetDigits)
}

/**
 * For records the client encodes itself: each record's lineage made the Map of bytes the client
 * writes (its producer would have made it from a Map of the same headers). Called by the client's
 * corrected `prepareRecordsBatch`.
 */
export function clientHeaders(messages: BatchMessage[]): void {
  for (const message of messages) if (isLineage(message.headers)) message.headers = message.headers.toBytes()
}

/** The headers' part of a record body, or -1 when they are not a Map of bytes or a lineage this writes. */
function headersSize(headers: unknown): number {
  if (headers == null) return 1
  if (isLineage(headers)) return lineageSize(headers)
  if (!(headers instanceof Map)) return -1
  headerBytes = varIntSize(headers.size)
  headersOk = true
  ;(headers as Map<unknown, unknown>).forEach(sizeHeader)
  return headersOk ? headerBytes : -1
}

/**
 * The batch's bytes, exactly as the client's `createRecordsBatch` writes them, or `undefined`
 * when the client must encode this batch itself. Like the client, it sets each message's
 * `timestamp` to the bigint it used (the time of the call when it had none).
 */
export function encodeRecordsBatch(
  messages: BatchMessage[],
  options: BatchOptions,
  crc32c: (bytes: Buffer) => number,
): Buffer | undefined {
  const count = messages.length
  if (count === 0 || (options.compression ?? 'none') !== 'none') return undefined
  const now = BigInt(Date.now())
  const first = messages[0]!.timestamp ?? now
  if (typeof first !== 'bigint') return undefined
  if (bodySizes.length < count) bodySizes = new Int32Array(Math.max(count, bodySizes.length * 2))

  // Pass 1: check every record is one this writes exactly, and size it. Nothing is changed yet.
  let maxTimestamp = first
  let total = BATCH_HEADER_SIZE
  for (let i = 0; i < count; i++) {
    const message = messages[i]!
    const timestamp = message.timestamp ?? now
    if (typeof timestamp !== 'bigint') return undefined
    // records without a timestamp of their own share `now`: no bigint made for their delta
    const delta = timestamp === first ? 0n : timestamp - first
    if (delta >= MAX_DELTA || delta <= -MAX_DELTA) return undefined
    if (timestamp > maxTimestamp) maxTimestamp = timestamp
    const { key, value } = message
    if (!isBytesOrNull(key) || !isBytesOrNull(value)) return undefined
    const headers = headersSize(message.headers)
    if (headers < 0) return undefined
    const body = 1 + varIntSize(delta === 0n ? 0 : Number(delta)) + varIntSize(i) + bytesSize(key) + bytesSize(value) + headers
    bodySizes[i] = body
    total += varIntSize(body) + body
  }

  // Pass 2: the header of the batch, then its records.
  const buffer = Buffer.allocUnsafe(total)
  buffer.writeBigInt64BE(0n, 0) // firstOffset
  buffer.writeInt32BE(total - 12, 8) // length: from partitionLeaderEpoch to the end
  buffer.writeInt32BE(options.partitionLeaderEpoch ?? 0, 12)
  buffer.writeInt8(CURRENT_RECORD_VERSION, 16)
  // 17: the CRC, written last
  buffer.writeInt16BE(options.transactionalId ? IS_TRANSACTIONAL : 0, 21)
  buffer.writeInt32BE(count - 1, 23) // lastOffsetDelta
  buffer.writeBigInt64BE(first, 27)
  buffer.writeBigInt64BE(maxTimestamp, 35)
  buffer.writeBigInt64BE(options.producerId ?? -1n, 43)
  buffer.writeInt16BE(options.producerEpoch ?? 0, 51)
  const firstSequence = options.sequences
    ? options.sequences.getWithDefault(`${String(messages[0]!.topic)}:${String(messages[0]!.partition)}`, 0)
    : 0
  buffer.writeInt32BE(firstSequence, 53)
  buffer.writeInt32BE(count, 57)

  let position = BATCH_HEADER_SIZE
  for (let i = 0; i < count; i++) {
    const message = messages[i]!
    const timestamp = (message.timestamp ?? now) as bigint
    message.timestamp = timestamp
    position = writeVarInt(buffer, position, bodySizes[i]!)
    buffer[position++] = 0 // attributes
    position = writeVarInt(buffer, position, timestamp === first ? 0 : Number(timestamp - first))
    position = writeVarInt(buffer, position, i)
    position = writeBytes(buffer, position, message.key as Uint8Array | null | undefined)
    position = writeBytes(buffer, position, message.value as Uint8Array | null | undefined)
    const headers = message.headers as Map<Uint8Array | null, Uint8Array | null> | Lineage | null | undefined
    if (headers == null) {
      buffer[position++] = 0
    } else if (isLineage(headers)) {
      position = writeLineage(buffer, position, headers)
    } else {
      target = buffer
      at = writeVarInt(buffer, position, headers.size)
      headers.forEach(writeHeader)
      position = at
    }
  }
  // the batch is not kept alive until the next one
  target = EMPTY
  if (position !== total) throw new Error(`kpipe: record batch of ${total} bytes written as ${position}`)
  buffer.writeUInt32BE(crc32c(buffer.subarray(CRC_START)), 17)
  return buffer
}
