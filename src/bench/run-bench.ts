import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import type { Settings } from '../shell/settings.ts'
import { kafkaConnection } from '../shell/kafka/connection.ts'
import { freePort, startLocalBroker, stopLocalBroker } from '../shell/broker/local-broker.ts'
import { removePostgres, startPostgres, type PostgresServer } from '../shell/postgres/ephemeral-server.ts'
import { javaCommand } from '../shell/broker/java.ts'
import type { BenchContext } from './bench-context.ts'
import { KafkaProbe } from './kafka-probe.ts'
import { median, stopParts } from './measure.ts'
import { measureCeiling } from './ceiling.ts'
import { measureProcessor, preloadLogins } from './processor-throughput.ts'
import { measureLatency } from './end-to-end-latency.ts'
import { measureSink } from './sink-throughput.ts'
import { measureLoginSink } from './login-sink-throughput.ts'
import { measureCollector } from './collector-cost.ts'

export interface BenchOptions {
  settings: Settings
  messages: number
  repeat: number
  quick: boolean
  /** start a temporary broker (KAFKA_BROKERS was not given) */
  ownBroker: boolean
  /** write the processor runs' CPU profiles (node --cpu-prof) here */
  cpuProfileDir?: string
  /** 'processor': the ceiling and the processor only (no latency, sinks or collector) */
  only?: 'processor'
  status(line: string): void
  /** aborting it (Ctrl-C) stops the parts, the temporary broker and database, then calls onInterrupted */
  signal?: AbortSignal
  onInterrupted?: () => void
}

export const LATENCY_RATES = [1000, 10_000]

/** The figures, keyed by what they are; every number here is a measurement. */
export interface BenchResult {
  machine: Record<string, string | number>
  settings: { messages: number; repeat: number; quick: boolean; only?: 'processor'; sink_rows?: number; latency_seconds?: number; collector_seconds?: number }
  ceiling: { record_bytes: number; producer_msgs_per_s: number; consumer_msgs_per_s: number }
  processor: Record<'at_least_once' | 'exactly_once', { msgs_per_s: number; ratio_to_ceiling: number; cpu_us_per_msg: number; wall_s: number; startup_s: number; peak_rss_mb: number }>
  /** absent with `only: 'processor'`, like the sinks and the collector */
  latency?: Record<string, { p50_ms: number; p99_ms: number; max_ms: number; messages: number }>
  sink?: Record<'postgres' | 'pglite', { rows_per_s: number; peak_rss_mb: number }>
  logins_sink?: { events_per_s: number; cpu_us_per_event: number; rows: number; peak_rss_mb: number }
  collector?: { cpu_ms_per_sample: number; peak_rss_mb: number }
  targets: Record<string, BenchTarget>
}

export interface BenchTarget {
  target: string
  value: number
  met: boolean
}

/** Below this 1-minute load average (on 2 cores) the machine counts as quiet for the absolute rate target. */
export const QUIET_LOAD_AVERAGE = 1.5

/**
 * The targets of the issue, each with the measured value and whether it is met. The absolute
 * processor rate holds "when the machine is quiet": under more load it is reported with `met`
 * false and `quiet` false, and the ratio to the ceiling of the same run is the figure to judge.
 */
export function benchTargets(r: {
  ceilingRate: number
  processor: BenchResult['processor']
  latency?: BenchResult['latency']
  sink?: BenchResult['sink']
  loadAverage: number
}): Record<string, BenchTarget & { quiet?: boolean }> {
  const { processor: p, sink } = r
  const at = (value: number, op: '>=' | '<=', limit: number, label = String(limit)): BenchTarget =>
    ({ target: `${op} ${label}`, value, met: op === '>=' ? value >= limit : value <= limit })
  const quiet = r.loadAverage < QUIET_LOAD_AVERAGE
  const alo = p.at_least_once.msgs_per_s
  return {
    'processor.at_least_once.ratio_to_ceiling': at(p.at_least_once.ratio_to_ceiling, '>=', 0.5),
    'processor.at_least_once.msgs_per_s': { ...at(alo, '>=', 90_000, '90000 (machine quiet)'), met: quiet && alo >= 90_000, quiet },
    'processor.at_least_once.cpu_us_per_msg': at(p.at_least_once.cpu_us_per_msg, '<=', 12),
    'processor.exactly_once.ratio_to_at_least_once': at(Math.round((p.exactly_once.msgs_per_s / alo) * 1000) / 1000, '>=', 0.9),
    'processor.peak_rss_mb': at(Math.max(p.at_least_once.peak_rss_mb, p.exactly_once.peak_rss_mb), '<=', 250),
    ...(r.latency
      ? {
          'latency.at_1000_msgs_per_s.p99_ms': at(r.latency.at_1000_msgs_per_s!.p99_ms, '<=', 25),
          'latency.at_10000_msgs_per_s.p99_ms': at(r.latency.at_10000_msgs_per_s!.p99_ms, '<=', 50),
        }
      : {}),
    ...(sink
      ? {
          'sink.postgres.rows_per_s': at(sink.postgres.rows_per_s, '>=', 60_000),
          'sink.pglite.rows_per_s': at(sink.pglite.rows_per_s, '>=', 30_000),
          'sink.pglite.peak_rss_mb': at(sink.pglite.peak_rss_mb, '<=', 500),
        }
      : {}),
  }
}

const MB = 1024 * 1024
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits

/**
 * `kpipe bench`: the broker's own ceiling, then the processor, end-to-end latency, the sink and
 * the collector, each part run as its own process the way an operator runs it, each figure the
 * median of `repeat` runs. Starts a temporary broker unless KAFKA_BROKERS is set, and an
 * ephemeral PostgreSQL unless DATABASE_URL is set; removes what it created.
 */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const { settings, status, repeat } = options
  const runId = `kpipe-bench-${Date.now().toString(36)}`
  const sinkRows = options.quick ? 2000 : 200_000
  const latencySeconds = options.quick ? 1 : 10
  const collectorSeconds = options.quick ? 1.5 : 10
  const machine = describeMachine()
  const cleanups: (() => Promise<void> | void)[] = []
  let cleaned: Promise<void> | undefined
  const cleanUp = () => (cleaned ??= (async () => {
    await stopParts()
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup()
      } catch {
        // best effort: a temp broker or database that will not stop is removed with its dir
      }
    }
  })())
  const onAbort = () => void cleanUp().then(() => options.onInterrupted?.())
  options.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    const ownBroker = options.ownBroker
    let bootstrap = settings.KAFKA_BROKERS.join(',')
    const [brokerReady, postgresUrl] = await Promise.all([
      ownBroker ? startTemporaryBroker(status, cleanups) : Promise.resolve(bootstrap),
      options.only === 'processor' ? Promise.resolve('') : settings.DATABASE_URL ? benchDatabase(settings.DATABASE_URL, runId, cleanups) : startTemporaryPostgres(status, cleanups),
    ])
    bootstrap = brokerReady
    const connection = kafkaConnection({ ...settings, KAFKA_BROKERS: bootstrap.split(',') }, 'bench')
    const probe = new KafkaProbe(connection)
    cleanups.push(() => probe.close())
    const hashKey = randomBytes(32).toString('hex')
    const context: BenchContext = {
      connection, bootstrap, probe, runId, status,
      childEnv(overrides = {}) {
        const env: NodeJS.ProcessEnv = { ...process.env, KAFKA_BROKERS: bootstrap, KPIPE_HASH_KEY: hashKey, LOG_LEVEL: 'warn' }
        for (const [name, value] of Object.entries(overrides)) {
          if (value === undefined) delete env[name]
          else env[name] = value
        }
        return env
      },
    }
    const runs = <T>(label: string, run: (i: number) => Promise<T>) => sequence(repeat, (i) => {
      if (options.signal?.aborted) throw new Error('interrupted')
      status(`${label} (run ${i + 1} of ${repeat})`)
      return run(i)
    })

    const preload = await preloadLogins(context, `${runId}-logins`, options.messages)
    cleanups.push(() => probe.deleteTopics([preload.topic]))
    const ceilingRuns = await runs('broker ceiling: ProducerPerformance and ConsumerPerformance', async (i) => {
      const topic = `${runId}-ceiling-${i}`
      await probe.createTopics([topic])
      try {
        return await measureCeiling(bootstrap, topic, options.messages, preload.meanValueBytes)
      } finally {
        await probe.deleteTopics([topic]).catch(() => {})
      }
    })
    const ceiling = {
      record_bytes: preload.meanValueBytes,
      producer_msgs_per_s: round(median(ceilingRuns.map((r) => r.producerMsgsPerS)), 0),
      consumer_msgs_per_s: round(median(ceilingRuns.map((r) => r.consumerMsgsPerS)), 0),
    }
    const ceilingRate = Math.min(ceiling.producer_msgs_per_s, ceiling.consumer_msgs_per_s)

    const processor = {} as BenchResult['processor']
    for (const [key, exactlyOnce] of [['at_least_once', false], ['exactly_once', true]] as const) {
      const label = `processor ${exactlyOnce ? 'exactly-once' : 'at-least-once'}`
      const results = await runs(label, (i) => measureProcessor(context, preload, exactlyOnce, `${key.replaceAll('_', '-')}-${i}`, options.cpuProfileDir))
      const msgsPerS = median(results.map((r) => r.msgsPerS))
      processor[key] = {
        msgs_per_s: round(msgsPerS, 0),
        ratio_to_ceiling: round(msgsPerS / ceilingRate, 3),
        cpu_us_per_msg: round(median(results.map((r) => r.cpuUsPerMsg)), 1),
        wall_s: round(median(results.map((r) => r.wallS)), 2),
        startup_s: round(median(results.map((r) => r.startupS)), 2),
        peak_rss_mb: round(Math.max(...results.map((r) => r.peakRssBytes)) / MB),
      }
    }

    if (options.only === 'processor') {
      machine.load_average_1m_end = round(loadavg()[0]!, 2)
      return {
        machine,
        settings: { messages: options.messages, repeat, quick: options.quick, only: 'processor' },
        ceiling, processor,
        targets: benchTargets({ ceilingRate, processor, loadAverage: Math.max(Number(machine.load_average_1m_start), machine.load_average_1m_end) }),
      }
    }

    const latencyRuns = await runs('end-to-end latency', () => measureLatency(context, LATENCY_RATES, latencySeconds))
    const latency: BenchResult['latency'] = {}
    LATENCY_RATES.forEach((rate, i) => {
      const at = latencyRuns.map((r) => r[i]!)
      latency[`at_${rate}_msgs_per_s`] = {
        p50_ms: round(median(at.map((r) => r.p50Ms)), 2),
        p99_ms: round(median(at.map((r) => r.p99Ms)), 2),
        max_ms: round(median(at.map((r) => r.maxMs)), 2),
        messages: median(at.map((r) => r.messages)),
      }
    })

    const sink = {} as NonNullable<BenchResult['sink']>
    for (const [key, url] of [['postgres', postgresUrl], ['pglite', undefined]] as const) {
      const results = await runs(`sink into ${key === 'postgres' ? 'PostgreSQL' : 'PGlite'}`, (i) => measureSink(context, url, sinkRows, `sink-${key}-${i}`))
      sink[key] = { rows_per_s: round(median(results.map((r) => r.rowsPerS)), 0), peak_rss_mb: round(Math.max(...results.map((r) => r.peakRssBytes)) / MB) }
    }

    const loginSinkRuns = await runs('logins sink into PostgreSQL', (i) => measureLoginSink(context, postgresUrl, sinkRows, `logins-sink-${i}`, options.cpuProfileDir))
    const logins_sink = { events_per_s: round(median(loginSinkRuns.map((r) => r.eventsPerS)), 0), cpu_us_per_event: round(median(loginSinkRuns.map((r) => r.cpuUsPerEvent)), 1), rows: median(loginSinkRuns.map((r) => r.rows)), peak_rss_mb: round(Math.max(...loginSinkRuns.map((r) => r.peakRssBytes)) / MB) }

    const collectorRuns = await runs('collector', () => measureCollector(context, collectorSeconds))
    const collector = {
      cpu_ms_per_sample: round(median(collectorRuns.map((r) => r.cpuMsPerSample)), 3),
      peak_rss_mb: round(Math.max(...collectorRuns.map((r) => r.peakRssBytes)) / MB),
    }

    machine.load_average_1m_end = round(loadavg()[0]!, 2)
    const targets = benchTargets({ ceilingRate, processor, latency, sink, loadAverage: Math.max(Number(machine.load_average_1m_start), machine.load_average_1m_end) })
    targets['logins_sink.events_per_s'] = { target: '>= 100000', value: logins_sink.events_per_s, met: logins_sink.events_per_s >= 100_000 }
    return {
      machine,
      settings: { messages: options.messages, repeat, quick: options.quick, sink_rows: sinkRows, latency_seconds: latencySeconds, collector_seconds: collectorSeconds },
      ceiling, processor, latency, sink, logins_sink, collector, targets,
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
    await cleanUp()
  }
}

async function sequence<T>(n: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = []
  for (let i = 0; i < n; i++) results.push(await run(i))
  return results
}

async function startTemporaryBroker(status: (line: string) => void, cleanups: (() => Promise<void> | void)[]): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-bench-kafka-'))
  cleanups.push(async () => {
    await stopLocalBroker(dataDir).catch(() => {})
    rmSync(dataDir, { recursive: true, force: true })
  })
  status('starting a temporary Kafka broker')
  const broker = await startLocalBroker({ dataDir, port: await freePort(), controllerPort: await freePort(), heapMb: 1024, onStatus: status })
  return broker.bootstrap
}

async function startTemporaryPostgres(status: (line: string) => void, cleanups: (() => Promise<void> | void)[]): Promise<string> {
  status('starting an ephemeral PostgreSQL')
  const server: PostgresServer = startPostgres(await freePort())
  cleanups.push(() => removePostgres(server))
  return server.url
}

/**
 * With DATABASE_URL set, the sink is measured in a database of its own on that server, dropped
 * afterwards; where the role may not create databases, in the given one (the bench deletes
 * its rows, which carry host names of this run only).
 */
async function benchDatabase(url: string, runId: string, cleanups: (() => Promise<void> | void)[]): Promise<string> {
  const name = runId.replaceAll('-', '_')
  const admin = new pg.Client({ connectionString: url })
  try {
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
  } catch {
    return url
  } finally {
    await admin.end().catch(() => {})
  }
  cleanups.push(async () => {
    const dropper = new pg.Client({ connectionString: url })
    await dropper.connect()
    await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => dropper.end())
  })
  const benchUrl = new URL(url)
  benchUrl.pathname = `/${name}`
  return benchUrl.toString()
}

function describeMachine(): Record<string, string | number> {
  let cpuModel = cpus()[0]?.model ?? 'unknown'
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel
  } catch {
    // not Linux
  }
  const java = spawnSync(javaCommand(), ['-version'], { encoding: 'utf8' })
  return {
    cpus: cpus().length,
    cpu_model: cpuModel,
    memory_total_mb: Math.round(totalmem() / MB),
    node: process.version,
    java: /version "([^"]+)"/.exec(`${java.stderr}${java.stdout}`)?.[1] ?? 'unknown',
    load_average_1m_start: round(loadavg()[0]!, 2),
  }
}
