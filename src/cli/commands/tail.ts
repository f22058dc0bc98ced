import { Command } from 'commander'
import { commandContext, intFlag, untilSignal } from '../context.ts'
import type { ConsumedRecord } from '../../shell/kafka/records.ts'

export function tailCommand(): Command {
  return new Command('tail')
    .description('pretty-print the records of a topic: keys, headers and JSON values (follows new records until Ctrl-C)')
    .argument('<topic>', 'topic name')
    .option('--from-beginning', 'start at the earliest offset instead of new records only')
    .option('--count <n>', 'stop after this many records', intFlag('count', 1))
    .option('--json', 'one JSON object per line (topic, partition, offset, timestamp, key, headers, value)')
    .option('--uncommitted', 'also show records of open or aborted transactions (read_uncommitted)')
    .action(async (topic: string, options: { fromBeginning?: boolean; count?: number; json?: boolean; uncommitted?: boolean }, command: Command) => {
      const { settings } = commandContext(command)
      // the Kafka client is loaded when a topic is read, not for `kpipe tail --help`
      const [{ kafkaConnection }, { readTopic }] = await Promise.all([import('../../shell/kafka/connection.ts'), import('../../shell/kafka/topic-reader.ts')])
      const stop = new AbortController()
      void untilSignal(() => stop.abort())
      await readTopic(kafkaConnection(settings, 'tail'), topic, {
        from: options.fromBeginning ? 'earliest' : 'latest',
        follow: true,
        count: options.count,
        readCommitted: !options.uncommitted,
        signal: stop.signal,
      }, (record) => {
        process.stdout.write(options.json ? `${JSON.stringify(recordJson(record))}\n` : prettyRecord(record))
      })
    })
}

/** A record as plain JSON: the value parsed when it is JSON, else text, else base64. */
export function recordJson(record: ConsumedRecord) {
  const headers: Record<string, string> = {}
  for (const [k, v] of record.headers) headers[k] = v.toString('utf8')
  return {
    topic: record.topic,
    partition: record.partition,
    offset: Number(record.offset),
    timestamp: new Date(Number(record.timestamp)).toISOString(),
    key: record.key === undefined || record.key === null ? null : record.key.toString('utf8'),
    headers,
    value: decodeValue(record.value),
  }
}

function decodeValue(value: Buffer | undefined): unknown {
  if (value === undefined || value === null) return null
  const text = value.toString('utf8')
  try {
    return JSON.parse(text) as unknown
  } catch {
    return Buffer.from(text, 'utf8').equals(value) ? text : { base64: value.toString('base64') }
  }
}

function prettyRecord(record: ConsumedRecord): string {
  const json = recordJson(record)
  const color = process.stdout.isTTY
  const dim = (s: string) => (color ? `\x1b[2m${s}\x1b[0m` : s)
  const bold = (s: string) => (color ? `\x1b[1m${s}\x1b[0m` : s)
  const headers = Object.entries(json.headers).map(([k, v]) => `${k}=${v}`).join(' ')
  const value = typeof json.value === 'string' ? json.value : JSON.stringify(json.value, null, 2)
  return `${bold(`${json.topic}/${json.partition}@${json.offset}`)} ${dim(json.timestamp)} key=${json.key ?? '∅'}${headers ? ` ${dim(headers)}` : ''}\n${value}\n\n`
}
