import { createProducer } from '../shell/kafka/producer.ts'
import type { OutputRecord } from '../shell/kafka/records.ts'
import { LoginGenerator } from '../logins/generate/login-generator.ts'
import { awaitGroup, brokerCpuMs, brokerCpuPerRecordUs, cpuPerRecordUs, steadyRate, threadCpuPerRecordUs, type BenchContext } from './bench-context.ts'
import { startPart, type ThreadCpu } from './measure.ts'
import { sendChunks } from '../shell/kafka/consumer-loop.ts'

/** The share of invalid and stale events in the preload: what `kpipe up` generates. */
export const BENCH_INVALID_RATIO = 0.05
/**
 * MAX_MESSAGE_AGE of the processor under measurement: the preload must stay current while the
 * repetitions run (the generator's stale events are an hour old or more, so they stay stale).
 */
export const BENCH_MAX_MESSAGE_AGE = 1800

export interface Preload {
  topic: string
  messages: number
  /** mean value size in bytes: the ceiling is measured with records of this size */
  meanValueBytes: number
}

const PRELOAD_SEND = 4000

/** Writes `messages` seeded login events with the usual invalid share to a fresh topic. */
export async function preloadLogins(context: BenchContext, topic: string, messages: number): Promise<Preload> {
  await context.probe.createTopics([topic])
  const generator = new LoginGenerator(7, BENCH_INVALID_RATIO)
  const producer = createProducer(context.connection, { clientId: `${context.connection.clientId}-preload` })
  let bytes = 0
  try {
    for (let sent = 0; sent < messages;) {
      const nowSeconds = Math.floor(Date.now() / 1000)
      const batch: OutputRecord[] = []
      for (let i = Math.min(PRELOAD_SEND, messages - sent); i > 0; i--) {
        const event = generator.next(nowSeconds)
        bytes += typeof event.value === 'string' ? Buffer.byteLength(event.value) : event.value.length
        batch.push(event.key === undefined ? { topic, value: event.value } : { topic, key: event.key, value: event.value })
      }
      for (const chunk of sendChunks(batch)) await producer.send({ messages: chunk })
      sent += batch.length
      context.status(`preloading login events: ${sent.toLocaleString('en')} of ${messages.toLocaleString('en')}`)
    }
  } finally {
    await producer.close().catch(() => {})
  }
  return { topic, messages, meanValueBytes: Math.round(bytes / messages) }
}

export interface ProcessorRun {
  msgsPerS: number
  /** from spawning the process to the last output, start-up included */
  wallS: number
  startupS: number
  /** the processor's own CPU time per message (all its threads), first commit to last */
  cpuUsPerMsg: number
  /** the same, by thread */
  cpuUsPerMsgByThread: ThreadCpu
  /** the broker's CPU time per message over the same span; undefined when it runs elsewhere (BenchContext.brokerPids) */
  brokerCpuUsPerMsg?: number
  peakRssBytes: number
}

/**
 * `kpipe logins process` as a child on the preloaded topic, with its own group and output
 * topics: timed from its first commit to the commit of the last input record.
 */
export async function measureProcessor(context: BenchContext, preload: Preload, exactlyOnce: boolean, name: string, cpuProfileDir?: string): Promise<ProcessorRun> {
  const prefix = `${context.runId}-${name}`
  const outputs = ['processed', 'errors', 'cleaned', 'summary', 'metrics'].map((t) => `${prefix}-${t}`)
  await context.probe.createTopics(outputs)
  const groupId = `${prefix}-group`
  const spawnedAt = performance.now()
  const spawnBrokerMs = brokerCpuMs(context)
  const part = startPart(
    ['logins', 'process', '--group', groupId, '--instance-id', prefix, ...(exactlyOnce ? ['--exactly-once'] : [])],
    context.childEnv({
      TOPIC_LOGINS: preload.topic,
      TOPIC_PROCESSED: outputs[0],
      TOPIC_ERRORS: outputs[1],
      TOPIC_CLEANED: outputs[2],
      TOPIC_SUMMARY: outputs[3],
      TOPIC_METRICS: outputs[4],
      MAX_MESSAGE_AGE: String(BENCH_MAX_MESSAGE_AGE),
    }),
    cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : [],
  )
  try {
    const label = `processor ${exactlyOnce ? 'exactly-once' : 'at-least-once'}`
    const progress = await awaitGroup(context, part, groupId, preload.topic, preload.messages, 600_000, label)
    const peakRssBytes = part.peakRss()
    const wallS = (progress.doneAt - spawnedAt) / 1000
    const steady = steadyRate(progress, preload.messages)
    const cpuUsPerMsg = cpuPerRecordUs(progress, preload.messages)
    // when the first commit took most of the input (small --messages), whole-process figures, start-up included
    return {
      msgsPerS: Number.isNaN(steady) ? preload.messages / wallS : steady,
      wallS,
      startupS: (progress.firstAt - spawnedAt) / 1000,
      cpuUsPerMsg: Number.isNaN(cpuUsPerMsg) ? (progress.doneCpuMs * 1000) / preload.messages : cpuUsPerMsg,
      cpuUsPerMsgByThread: threadCpuPerRecordUs(progress, preload.messages),
      ...(context.brokerPids.length > 0 ? { brokerCpuUsPerMsg: brokerCpuPerRecordUs(progress, preload.messages, spawnBrokerMs) } : {}),
      peakRssBytes,
    }
  } finally {
    const code = await part.stop()
    if (code !== 0 && code !== null) context.status(`processor exited with ${code}: ${part.output().slice(-300)}`)
    await context.probe.deleteTopics(outputs).catch(() => {})
  }
}
