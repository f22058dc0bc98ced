import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { Consumer, type MessagesStream } from '@platformatic/kafka'
import { clientOptions } from '../shell/kafka/connection.ts'
import { createProducer } from '../shell/kafka/producer.ts'
import { rawDeserializers, type ConsumedRecord, type OutputRecord } from '../shell/kafka/records.ts'
import { LoginGenerator } from '../logins/generate/login-generator.ts'
import type { BenchContext } from './bench-context.ts'
import { percentile, pollUntil, startPart } from './measure.ts'
import { BENCH_MAX_MESSAGE_AGE } from './processor-throughput.ts'

export interface LatencyRun {
  rate: number
  messages: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

/** the only version the processor lets through by default (ALLOWED_APP_VERSIONS) */
const ALLOWED_VERSION = '2.3.0'
const WARM_UP = 50
/**
 * Events per send: a sender that fell behind its schedule on a loaded machine catches up in
 * sends of at most this many (~360 KB), below the broker's 1 MiB per partition batch (a whole
 * second's worth at 10,000 msg/s in one send was refused as MESSAGE_TOO_LARGE and ended the run).
 */
const MAX_EVENTS_PER_SEND = 2000

/**
 * Generator → `processed-output`, end to end: events are produced at a fixed rate, `kpipe logins
 * process` (at-least-once, a child) transforms them, and a reader here takes each output from
 * the topic. An event's latency is the time from just before its send to its output being read;
 * user ids are unique, so the output's key finds the event. Events filtered to cleaned-data
 * (other app versions) are not waited for.
 */
export async function measureLatency(context: BenchContext, rates: number[], seconds: number): Promise<LatencyRun[]> {
  const prefix = `${context.runId}-latency`
  const topics = ['logins', 'processed', 'errors', 'cleaned', 'summary', 'metrics'].map((t) => `${prefix}-${t}`)
  await context.probe.createTopics(topics)
  const [input, processed] = topics as [string, string]
  const part = startPart(
    ['logins', 'process', '--group', `${prefix}-group`, '--instance-id', prefix],
    context.childEnv({
      TOPIC_LOGINS: input, TOPIC_PROCESSED: processed, TOPIC_ERRORS: topics[2], TOPIC_CLEANED: topics[3], TOPIC_SUMMARY: topics[4], TOPIC_METRICS: topics[5],
      MAX_MESSAGE_AGE: String(BENCH_MAX_MESSAGE_AGE),
    }),
  )
  const producer = createProducer(context.connection, { clientId: `${context.connection.clientId}-latency` })
  const consumer = new Consumer<Buffer | undefined, Buffer | undefined, string, Buffer>({
    ...clientOptions(context.connection, `${context.connection.clientId}-latency-reader`),
    groupId: `${prefix}-reader-${randomUUID()}`,
    deserializers: rawDeserializers,
  })
  let stream: MessagesStream<Buffer | undefined, Buffer | undefined, string, Buffer> | undefined
  const sentAt = new Map<string, number>()
  let latencies: number[] = []
  let received = 0
  try {
    stream = await consumer.consume({ topics: [processed], mode: 'earliest', autocommit: false, maxWaitTime: 100 })
    stream.on('data', (record: ConsumedRecord) => {
      const at = performance.now()
      const key = record.key?.toString('latin1')
      const sent = key === undefined ? undefined : sentAt.get(key)
      if (sent === undefined) return
      sentAt.delete(key!)
      latencies.push(at - sent)
      received++
    })
    const generator = new LoginGenerator(11, 0)
    const send = async (count: number) => {
      const nowSeconds = Math.floor(Date.now() / 1000)
      const messages: OutputRecord[] = []
      const expected: string[] = []
      for (let i = 0; i < count; i++) {
        const event = generator.next(nowSeconds)
        messages.push({ topic: input, key: event.key!, value: event.value })
        if ((event.value as string).includes(`"app_version":"${ALLOWED_VERSION}"`)) expected.push(event.key!)
      }
      const at = performance.now()
      for (const key of expected) sentAt.set(key, at)
      await producer.send({ messages })
      return expected.length
    }

    // the processor is up and its group has joined once a first event comes out
    context.status('latency: waiting for the processor to start')
    let expected = await send(WARM_UP)
    await pollUntil(() => {
      if (part.exited()) throw new Error(`the processor exited early:\n${part.output()}`)
      return received >= expected
    }, 120_000, 'the processor to process the warm-up events')

    const runs: LatencyRun[] = []
    for (const rate of rates) {
      latencies = []
      received = 0
      expected = 0
      const total = Math.round(rate * seconds)
      const started = performance.now()
      for (let queued = 0; queued < total;) {
        const elapsed = performance.now() - started
        const due = Math.min(total, Math.floor((rate * elapsed) / 1000) + 1)
        if (due <= queued) {
          await delay(Math.max(1, Math.ceil(((queued + 1) * 1000) / rate - elapsed)))
          continue
        }
        const count = Math.min(due - queued, MAX_EVENTS_PER_SEND)
        expected += await send(count)
        queued += count
        context.status(`latency at ${rate.toLocaleString('en')} msg/s: ${queued.toLocaleString('en')} of ${total.toLocaleString('en')} sent`)
      }
      await pollUntil(() => received >= expected, 60_000, `the outputs of the events sent at ${rate} msg/s (${received} of ${expected})`)
      const sorted = Float64Array.from(latencies).sort()
      runs.push({ rate, messages: sorted.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted[sorted.length - 1]! })
    }
    return runs
  } finally {
    if (stream) await stream.close().catch(() => {})
    await new Promise<void>((resolve) => consumer.close(true, () => resolve()))
    await producer.close().catch(() => {})
    await part.stop()
    await context.probe.deleteTopics(topics).catch(() => {})
  }
}
