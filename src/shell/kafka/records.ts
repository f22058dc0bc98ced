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

/** The lineage headers every derived record carries. */
export function lineageHeaders(source: Pick<ConsumedRecord, 'topic' | 'partition' | 'offset'>): Record<string, string> {
  return {
    'source-topic': source.topic,
    'source-partition': String(source.partition),
    'source-offset': source.offset.toString(),
  }
}

export function headerText(record: ConsumedRecord, name: string): string | undefined {
  return record.headers.get(name)?.toString('utf8')
}
