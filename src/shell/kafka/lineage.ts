/**
 * The lineage headers of a derived record (SPEC.md: `source-topic`, `source-partition`,
 * `source-offset`), kept as the three values they name until the record batch is written.
 *
 * Every output of the processor carries them. Built as a Map of three Buffers, they made an output
 * hold 559 bytes while it waited to be written (320 as a Lineage; docs/benchmarks.md, "The lineage
 * written as the batch is"), and the client copied them into a Map of its own per record
 * (`Producer#send`). A `Lineage` holds its source's topic, partition
 * and offset (the consumed record's own values, shared); the client passes it through to kpipe's
 * record-batch encoder, which writes the three headers' bytes straight into the batch (both
 * changes: src/shell/kafka/client-correction.ts; docs/decisions.md, "Lineage headers are written
 * as the batch is").
 *
 * It reads like the Map it replaces (`get`, `size`, `keys`, iteration in the contract's order),
 * each value made on request. This module must not import the client: the client's producer and
 * records modules import it. The client and kpipe tell a lineage by its brand (isLineage), not by
 * `instanceof`: under the tests the client loads its own instance of this module.
 */
export class Lineage implements Iterable<[string, Buffer]> {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint

  constructor(topic: string, partition: number, offset: bigint) {
    this.topic = topic
    this.partition = partition
    this.offset = offset
  }

  /** three headers, always */
  get size(): number {
    return 3
  }

  get(name: string): Buffer | undefined {
    if (name === SOURCE_TOPIC) return Buffer.from(this.topic)
    if (name === SOURCE_PARTITION) return Buffer.from(String(this.partition))
    if (name === SOURCE_OFFSET) return Buffer.from(this.offset.toString())
    return undefined
  }

  has(name: string): boolean {
    return LINEAGE_NAMES.includes(name)
  }

  keys(): IterableIterator<string> {
    return LINEAGE_NAMES[Symbol.iterator]()
  }

  *entries(): IterableIterator<[string, Buffer]> {
    for (const name of LINEAGE_NAMES) yield [name, this.get(name)!]
  }

  [Symbol.iterator](): IterableIterator<[string, Buffer]> {
    return this.entries()
  }

  /** The headers as the client writes them: names and values as bytes (for the client's own encoder). */
  toBytes(): Map<Buffer, Buffer> {
    return new Map<Buffer, Buffer>()
      .set(SOURCE_TOPIC_BYTES, topicBytes(this.topic))
      .set(SOURCE_PARTITION_BYTES, Buffer.from(String(this.partition)))
      .set(SOURCE_OFFSET_BYTES, Buffer.from(this.offset.toString()))
  }
}

/** On every Lineage's prototype: what isLineage looks for, the same in every instance of this module. */
const LINEAGE_BRAND = Symbol.for('kpipe.lineage')
Object.defineProperty(Lineage.prototype, LINEAGE_BRAND, { value: true })

/** True for a Lineage, whichever instance of this module made it. */
export function isLineage(headers: unknown): headers is Lineage {
  return typeof headers === 'object' && headers !== null && (headers as { [LINEAGE_BRAND]?: unknown })[LINEAGE_BRAND] === true
}

/** The lineage header names (SPEC.md): the contract `kpipe audit`, replay and the dashboard read. */
export const SOURCE_TOPIC = 'source-topic'
export const SOURCE_PARTITION = 'source-partition'
export const SOURCE_OFFSET = 'source-offset'
const LINEAGE_NAMES: readonly string[] = [SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET]

export const SOURCE_TOPIC_BYTES = Buffer.from(SOURCE_TOPIC)
export const SOURCE_PARTITION_BYTES = Buffer.from(SOURCE_PARTITION)
export const SOURCE_OFFSET_BYTES = Buffer.from(SOURCE_OFFSET)

/** A topic's name as UTF-8, made once per topic (a process writes the lineage of a few). */
const topicBytesCache = new Map<string, Buffer>()
export function topicBytes(topic: string): Buffer {
  let bytes = topicBytesCache.get(topic)
  if (bytes === undefined) {
    bytes = Buffer.from(topic)
    if (topicBytesCache.size < 1024) topicBytesCache.set(topic, bytes)
  }
  return bytes
}

/** The number of decimal digits of a partition or offset (both ≥ 0 in a consumed record). */
export function decimalDigits(value: number): number {
  let digits = 1
  // % and the division of a multiple of 10 are exact below 2^53 (Math.floor(v / 10) is not near it)
  for (let v = value; v >= 10; v = (v - (v % 10)) / 10) digits++
  return digits
}

/**
 * Writes `value`'s decimal digits (`digits` of them, from decimalDigits) at `position`; returns
 * the position after them. For integers from 0 to 2^53 - 1.
 */
export function writeDecimal(buffer: Uint8Array, position: number, value: number, digits: number): number {
  for (let i = position + digits - 1; i >= position; i--) {
    const digit = value % 10
    buffer[i] = 48 + digit
    value = (value - digit) / 10
  }
  return position + digits
}

/** True when a partition and offset are written by decimalDigits/writeDecimal (else the encoder leaves the batch to the client). */
export function writableAsDecimal(lineage: Lineage): boolean {
  return Number.isSafeInteger(lineage.partition) && lineage.partition >= 0 && lineage.offset >= 0n && lineage.offset <= 9_007_199_254_740_991n
}
