/**
 * The client's default partitioning, without its cost: @platformatic/kafka computes murmur2 in
 * BigInt arithmetic (a BigInt per step, ~4 % of the processor's CPU profile). This is the same
 * function in 32-bit integer arithmetic, as Kafka's Java client writes it, and the same choice as
 * the client makes with it: a keyed record goes to `murmur2(key) >>> 0` (the client then takes it
 * modulo the topic's partitions), a record without a key to the next partition of its topic in turn.
 * Every output of kpipe lands where it did with the client's default.
 */
const SEED = 0x9747b28c
const M = 0x5bd1e995

/** Kafka's murmur2 of the bytes (the first `length` of them), as a signed 32-bit integer (the client's `murmur2`). */
export function murmur2(data: Uint8Array, length = data.length): number {
  let h = SEED ^ length
  let i = 0
  for (; i + 4 <= length; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)
    k = Math.imul(k, M)
    k ^= k >>> 24
    k = Math.imul(k, M)
    h = Math.imul(h, M) ^ k
  }
  const rest = length - i
  if (rest > 0) {
    if (rest === 3) h ^= data[i + 2]! << 16
    if (rest >= 2) h ^= data[i + 1]! << 8
    h ^= data[i]!
    h = Math.imul(h, M)
  }
  h ^= h >>> 13
  h = Math.imul(h, M)
  h ^= h >>> 15
  return h | 0
}

/** Where the client's default puts a record with this key: this modulo the topic's partitions. */
export function keyPartition(key: Uint8Array): number {
  return murmur2(key) >>> 0
}

const scratch = Buffer.allocUnsafe(1024)

/** keyPartition of a key as the producer serialises it (a string as its UTF-8 bytes), without a buffer per key. */
export function recordKeyPartition(key: string | Uint8Array): number {
  if (typeof key !== 'string') return keyPartition(key)
  // at most 3 bytes per UTF-16 unit: a key that might not fit the scratch buffer gets its own
  if (key.length * 3 > scratch.length) return keyPartition(Buffer.from(key))
  return murmur2(scratch, scratch.write(key, 0, 'utf8')) >>> 0
}

/** A partitioner for one producer: its own turn per topic for records without a key, as the client keeps one. */
export function defaultPartitioner(): (message: { topic: string }, key: unknown) => number {
  const turns = new Map<string, number>()
  return (message, key) => {
    if (key) return Buffer.isBuffer(key) ? keyPartition(key) : 0
    const turn = turns.get(message.topic) ?? 0
    turns.set(message.topic, turn + 1)
    return turn
  }
}
