import { Consumer, type RecordsBatch } from '@platformatic/kafka'
import { SetupError } from '../errors.ts'
import { CORRECTION_MARK, STABLE_OFFSETS_MARK } from './client-correction.ts'

let corrected: boolean | undefined

/**
 * Every read_committed consumer of kpipe checks this first: the client loaded in this process
 * carries kpipe's read_committed corrections (src/shell/kafka/client-correction.ts). Without them a
 * reader would drop committed records and deliver aborted ones, or start from an offset a
 * transaction has moved on, silently; this makes it loud.
 */
export function assertReadCommittedCorrected(): void {
  if (corrected === undefined) {
    const source = Function.prototype.toString.call(Consumer)
    corrected = source.includes(CORRECTION_MARK) && source.includes(STABLE_OFFSETS_MARK)
  }
  if (!corrected) {
    throw new SetupError(
      'the Kafka client loaded in this process lacks kpipe\'s read_committed correction',
      'start kpipe through bin/kpipe.js (or register src/shell/kafka/client-correction.ts before the client loads)',
    )
  }
}

/** Control batches (transaction markers) take offsets but carry no record of the topic. */
export const IS_CONTROL = 0b100000

interface FetchedPartition {
  abortedTransactions: readonly { producerId: bigint; firstOffset: bigint }[] | null
  records?: readonly RecordsBatch[] | null
}

/**
 * The batches of one partition of a read_committed fetch that belong to no aborted transaction,
 * for a reader that fetches on its own (src/shell/kafka/topic-reader.ts) instead of through the
 * client's consumer stream. As Kafka's protocol defines it: an aborted transaction listed in the
 * response covers its producer's batches from its first offset up to that producer's next
 * transaction marker, or to the end of the response when the marker comes later. Each aborted
 * transaction is its own range (the client's filter kept one per producer id; see above).
 * Control batches are kept: they move the reader's position.
 */
export function batchesWithoutAborted(partition: FetchedPartition): RecordsBatch[] {
  const batches = partition.records ?? []
  const aborted = partition.abortedTransactions ?? []
  if (aborted.length === 0) return [...batches]
  const ranges = aborted.map(({ producerId, firstOffset }) => {
    const marker = batches.find((batch) => batch.producerId === producerId && batch.attributes & IS_CONTROL && batch.firstOffset >= firstOffset)
    return { producerId, first: firstOffset, end: marker?.firstOffset }
  })
  return batches.filter(
    (batch) =>
      batch.attributes & IS_CONTROL ||
      !ranges.some((range) => range.producerId === batch.producerId && batch.firstOffset >= range.first && (range.end === undefined || batch.firstOffset < range.end)),
  )
}
