import type { Message, MessageToProduce, Serializers, Deserializers } from '@platformatic/kafka'
import { Lineage } from './lineage.ts'

/** A record as the consumer loop hands it to a handler: key and value as raw bytes. */
export type ConsumedRecord = Message<Buffer | undefined, Buffer | undefined, string, Buffer>

/**
 * A record a handler asks the loop to produce. Strings are written as UTF-8. Headers as the client
 * takes them, or a record's lineage (lineageHeaders).
 */
export type OutputRecord = Omit<MessageToProduce<string | Buffer, string | Buffer, string, string | Buffer>, 'headers'> & {
  headers?: MessageToProduce<string | Buffer, string | Buffer, string, string | Buffer>['headers'] | Lineage
}

const toBuffer = (data?: string | Buffer) => (data === undefined || data === null ? undefined : typeof data === 'string' ? Buffer.from(data) : data)

/** Header names are a handful of constants (replay's, for one): encoded once, not once per record. */
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

/**
 * The lineage headers every derived record carries (hot path: one call per output record). A
 * `Lineage` of three fields instead of a Map of three Buffers: the client passes it to kpipe's
 * record-batch encoder, which writes the headers' bytes into the batch (src/shell/kafka/lineage.ts).
 */
export function lineageHeaders(source: Pick<ConsumedRecord, 'topic' | 'partition' | 'offset'>): Lineage {
  return new Lineage(source.topic, source.partition, source.offset)
}

export function headerText(record: ConsumedRecord, name: string): string | undefined {
  return record.headers.get(name)?.toString('utf8')
}
