import { createRecordsBatch, Producer } from '@platformatic/kafka'
import { SetupError } from '../errors.ts'
import { ENCODER_MARK, LINEAGE_MARK } from './client-correction.ts'
import { clientOptions, type KafkaConnection } from './connection.ts'
import { defaultPartitioner } from './partitioner.ts'
import { outputSerializers, type OutputRecord } from './records.ts'

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd'

export interface ProducerSettings {
  /** set for exactly-once: the producer then writes inside transactions */
  transactionalId?: string
  compression?: Compression
  clientId?: string
  /**
   * Makes the client repeat a failed request until it succeeds or the producer is closed, waiting
   * `retryUntilClosed(attempt, error)` ms before attempt 1, 2, … (without it: the client's three
   * tries, then the error). Only a repeat inside the client keeps a produce request's producer id
   * and sequence numbers, so that the broker drops a batch it already wrote (its answer lost): a
   * send that fails makes this client forget its producer id, and a send of the same records after
   * that is a new write. Close the producer to end the repeating; the pending send then fails.
   */
  retryUntilClosed?: (attempt: number, error: unknown) => number
}

type ClientProducer = Producer<string | Buffer, string | Buffer, string, string | Buffer>
type ClientSendOptions = Parameters<ClientProducer['send']>[0]

/**
 * kpipe's producer: the client's, whose `send` also takes records whose headers are a lineage
 * (OutputRecord), which its corrected producer passes through to kpipe's encoder
 * (src/shell/kafka/lineage.ts). createProducer makes sure the loaded client is the corrected one.
 */
export type KpipeProducer = ClientProducer & {
  send(options: Omit<ClientSendOptions, 'messages'> & { messages: OutputRecord[] }): ReturnType<ClientProducer['send']>
}

/**
 * Every producer of kpipe: idempotent and `acks=all`, so a retried send never duplicates
 * and an acknowledged record survives the loss of a broker.
 */
export function createProducer(connection: KafkaConnection, options: ProducerSettings = {}): KpipeProducer {
  assertLineageCorrected()
  return new Producer({
    ...clientOptions(connection, options.clientId ?? `${connection.clientId}-producer`),
    ...(options.retryUntilClosed ? { retries: true, retryDelay: (_client: unknown, _operation: string, attempt: number, _retries: number, error: unknown) => options.retryUntilClosed!(attempt, error) } : {}),
    idempotent: true,
    acks: -1,
    ...(options.compression && options.compression !== 'none' ? { compression: options.compression } : {}),
    // -1/-1 asks InitProducerId for a new epoch of the transactional id; the client's default 0/0
    // claims to be producer 0 and is answered PRODUCER_FENCED once the id has been used before
    // (e.g. by a process that was killed and is now restarted).
    ...(options.transactionalId ? { transactionalId: options.transactionalId, producerId: -1n, producerEpoch: -1 } : {}),
    serializers: outputSerializers,
    // the client's default partitioning, in integer arithmetic (partitioner.ts)
    partitioner: defaultPartitioner(),
  })
}

let lineageCorrected: boolean | undefined

/**
 * Throws unless the loaded client passes a record's lineage through to kpipe's encoder and writes
 * it where it encodes records itself (client-correction.ts): the client as it is would write a
 * Lineage's three headers with empty values, and no error.
 */
export function assertLineageCorrected(): void {
  lineageCorrected ??= Function.prototype.toString.call(Producer).includes(LINEAGE_MARK) && createRecordsBatch.toString().includes(ENCODER_MARK)
  if (!lineageCorrected) {
    throw new SetupError(
      'the Kafka client loaded in this process lacks kpipe\'s lineage and record-batch corrections',
      'start kpipe through bin/kpipe.js (or register src/shell/kafka/client-correction.ts before the client loads)',
    )
  }
}

type ClientTransaction = Awaited<ReturnType<ClientProducer['beginTransaction']>>

/** A transaction of kpipe's producer, whose `send` takes OutputRecords as the producer's does. */
export type KpipeTransaction = ClientTransaction & {
  send(options: Omit<Parameters<ClientTransaction['send']>[0], 'messages'> & { messages: OutputRecord[] }): ReturnType<ClientTransaction['send']>
}

/**
 * `producer.beginTransaction()`, and when it fails, the producer freed of the transaction it could
 * not begin. The client (2.12.1) registers the new transaction before it finds the coordinator and
 * initialises the producer id; when either fails (the broker unreachable), the transaction stays
 * registered, and every later begin fails with "There is already an active transaction": an
 * exactly-once stage could never write again (docs/upstream/failed-begin-transaction.md).
 */
export async function beginTransaction(producer: KpipeProducer): Promise<KpipeTransaction> {
  try {
    return await producer.beginTransaction()
  } catch (error) {
    // nothing was begun at the coordinator: the registration is all there is to undo
    const stuck = producer.transaction
    if (stuck && !stuck.completed) await stuck.cancel().catch(() => {})
    throw error
  }
}
