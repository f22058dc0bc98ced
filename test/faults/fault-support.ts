import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { seededRandom } from '../../src/logins/generate/login-generator.ts'
import { LoginGenerator } from '../../src/logins/generate/login-generator.ts'
import { freePort, startLocalBroker, stopLocalBroker, type LocalBrokerInfo } from '../../src/shell/broker/local-broker.ts'
import { backoffDelay, sleep } from '../../src/shell/backoff.ts'
import { kafkaConnection } from '../../src/shell/kafka/connection.ts'
import { createProducer } from '../../src/shell/kafka/producer.ts'
import { readTopic } from '../../src/shell/kafka/topic-reader.ts'
import { headerText, type OutputRecord } from '../../src/shell/kafka/records.ts'
import type { Settings } from '../../src/shell/settings.ts'
import { runKpipe } from '../support/cli.ts'

/**
 * The seed of a fault test: FAULTS_SEED when set (to replay a run), else a fresh one. Printed,
 * so that a failing run can be repeated with the same kill moments and the same bad records.
 */
export function faultSeed(test: string): { seed: number; random: () => number } {
  const given = process.env.FAULTS_SEED
  const seed = given !== undefined && given !== '' ? Number(given) >>> 0 : Math.floor(Math.random() * 2 ** 32)
  console.log(`[faults] ${test}: seed ${seed} (replay with FAULTS_SEED=${seed})`)
  return { seed, random: seededRandom(seed) }
}

/** One line of figures per scenario, in the run's output; docs/reliability.md quotes them. */
export function reportFigures(test: string, figures: Record<string, unknown>): void {
  console.log(`[faults] ${test}: ${JSON.stringify(figures)}`)
}

export const seconds = (ms: number) => Math.round(ms / 100) / 10

export interface AuditResult {
  inputs: number
  missing: number
  duplicated: number
  unmatched: number
  code: number | null
  /** per partition: the first few missing offsets */
  missingOffsets: Record<number, number[]>
}

/** `kpipe audit --json` (with `--strict` for exactly-once) as a user would run it. */
export function auditWithCli(env: Record<string, string>, strict: boolean): AuditResult {
  const audit = runKpipe(['audit', ...(strict ? ['--strict'] : []), '--json'], env, 300_000)
  if (!audit.stdout.trim()) throw new Error(`kpipe audit printed nothing (exit ${audit.code}): ${audit.stderr}`)
  const report = JSON.parse(audit.stdout) as Omit<AuditResult, 'code' | 'missingOffsets'> & { partitions: { partition: number; missingOffsets: number[] }[] }
  const missingOffsets: Record<number, number[]> = {}
  for (const p of report.partitions) if (p.missingOffsets.length) missingOffsets[p.partition] = p.missingOffsets
  return { inputs: report.inputs, missing: report.missing, duplicated: report.duplicated, unmatched: report.unmatched, code: audit.code, missingOffsets }
}

/**
 * What a reader of the three outputs sees (read_committed unless told otherwise): how many records, and how many distinct
 * source offsets of the input topic (partition/offset) they name.
 */
export async function committedLineage(settings: Settings, topics: string[], readCommitted = true): Promise<{ records: number; distinct: number; perTopic: Record<string, number>; offsets: Set<string> }> {
  const seen = new Set<string>()
  const perTopic: Record<string, number> = {}
  let records = 0
  for (const topic of topics) {
    perTopic[topic] = 0
    await readTopic(kafkaConnection(settings, 'fault-reader'), topic, { from: 'earliest', readCommitted }, (r) => {
      if (headerText(r, 'source-topic') !== settings.TOPIC_LOGINS) return
      records++
      perTopic[topic]!++
      seen.add(`${headerText(r, 'source-partition')}/${headerText(r, 'source-offset')}`)
    })
  }
  return { records, distinct: seen.size, perTopic, offsets: seen }
}

export interface RecordStream {
  /** records acknowledged by the broker so far */
  readonly sent: number
  /** sends that failed and were tried again (the broker was away) */
  readonly retries: number
  readonly done: Promise<void>
  stop(): void
}

/**
 * A steady stream of records (`make(i)` gives the i-th) from the test itself, that keeps going
 * through a broker outage: a failed send is tried again with backoff. A send that failed may
 * still have been written, so the topic can hold a record twice; the checks count what is there.
 */
export function streamRecords(settings: Settings, options: { count: number; rate: number; batch?: number; make: (i: number) => OutputRecord }): RecordStream {
  const producer = createProducer(kafkaConnection(settings, 'fault-stream'))
  const batch = options.batch ?? 250
  const stop = new AbortController()
  const state = { sent: 0, retries: 0 }
  const started = Date.now()
  const done = (async () => {
    try {
      while (state.sent < options.count && !stop.signal.aborted) {
        const due = Math.floor((options.rate * (Date.now() - started)) / 1000)
        if (due <= state.sent) {
          await sleep(Math.max(1, Math.ceil(((state.sent + 1) * 1000) / options.rate - (Date.now() - started))), stop.signal)
          continue
        }
        const messages: OutputRecord[] = []
        for (let n = Math.min(batch, options.count - state.sent); n > 0; n--) messages.push(options.make(state.sent + messages.length))
        for (let attempt = 1; ; attempt++) {
          try {
            await producer.send({ messages })
            break
          } catch {
            if (stop.signal.aborted) return
            state.retries++
            await sleep(backoffDelay(attempt, 2000), stop.signal)
          }
        }
        state.sent += messages.length
      }
    } finally {
      await producer.close().catch(() => {})
    }
  })()
  return {
    get sent() {
      return state.sent
    },
    get retries() {
      return state.retries
    },
    done,
    stop: () => stop.abort(),
  }
}

/** Generated login events (20 % invalid or stale), as `kpipe logins generate` makes them, streamed by streamRecords. */
export function streamLogins(settings: Settings, options: { count: number; rate: number; seed: number }): RecordStream {
  const generator = new LoginGenerator(options.seed, 0.2)
  return streamRecords(settings, {
    ...options,
    make: () => {
      const event = generator.next(Math.floor(Date.now() / 1000))
      return event.key === undefined ? { topic: settings.TOPIC_LOGINS, value: event.value } : { topic: settings.TOPIC_LOGINS, key: event.key, value: event.value }
    },
  })
}

const SAMPLE_START = Date.parse('2026-11-24T10:00:00.000Z')

/** The i-th of a stream of host samples: 200 hosts, one sample each every 500 ms, so (host, time) never repeats. */
export function hostSample(topic: string, prefix: string, i: number): OutputRecord {
  const host = `${prefix}-${i % 200}`
  const time = new Date(SAMPLE_START + Math.floor(i / 200) * 500).toISOString()
  return {
    topic,
    key: host,
    value: JSON.stringify({ host, time, cpu_usage: i % 100, memory_usage: 40, cpu_interrupts: i, cpu_calls: null, memory_used: 1, memory_free: 2, bytes_sent: 3, bytes_received: 4, disk_usage: 50 }),
  }
}

/** A single-node broker of a test's own, in a temp dir, on free ports; stop and start it again at will. */
export async function ownBroker(options: { properties?: (port: number) => Record<string, string> } = {}): Promise<{ info: LocalBrokerInfo; bootstrap: string; stop(timeoutMs?: number): Promise<void>; restart(): Promise<void>; remove(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-faults-kafka-'))
  const port = await freePort()
  const controllerPort = await freePort()
  const properties = options.properties?.(port)
  const start = () => startLocalBroker({ dataDir, port, controllerPort, heapMb: 512, timeoutMs: 180_000, ...(properties ? { properties } : {}) })
  const info = await start()
  return {
    info,
    bootstrap: info.bootstrap,
    async stop(timeoutMs = 30_000) {
      await stopLocalBroker(dataDir, timeoutMs)
    },
    async restart() {
      // same data dir, same ports: the same broker, its logs and committed offsets kept
      await start()
    },
    async remove() {
      await stopLocalBroker(dataDir, 0).catch(() => {})
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
