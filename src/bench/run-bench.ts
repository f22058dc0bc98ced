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
import { redactUrl } from '../shell/postgres/database.ts'
import { javaCommand } from '../shell/broker/java.ts'
import type { BenchContext } from './bench-context.ts'
import { KafkaProbe } from './kafka-probe.ts'
import { byThreadKind, loopbackListeners, median, stopParts, type ThreadCpu } from './measure.ts'
import { measureCeiling } from './ceiling.ts'
import { measureProcessor, preloadLogins } from './processor-throughput.ts'
import { measureLatency } from './end-to-end-latency.ts'
import { measureSink } from './sink-throughput.ts'
import { measureLoginSink } from './login-sink-throughput.ts'
import { measureCollector } from './collector-cost.ts'
import { sectionLine, type BenchSection } from './report.ts'
import { beforeImmediateExit } from '../shell/immediate-exit.ts'
import { errorLine } from '../shell/log.ts'

export interface BenchOptions {
  settings: Settings
  messages: number
  repeat: number
  quick: boolean
  /** start a temporary broker (KAFKA_BROKERS was not given) */
  ownBroker: boolean
  /** write the processor runs' CPU profiles (node --cpu-prof) here */
  cpuProfileDir?: string
  /**
   * 'processor': the ceiling and the processor only (no latency, sinks or collector, no PostgreSQL);
   * 'sink': the metrics sink into PostgreSQL and into PGlite only (no login events, no ceiling);
   * 'latency': the end-to-end latency only (no preload, no ceiling, no PostgreSQL)
   */
  only?: BenchPart
  status(line: string): void
  /** a line the user must see at once: a part's figures as soon as they are measured, a warning */
  say?(line: string): void
  /** aborting it (Ctrl-C) stops the parts, the temporary broker and database, then calls onInterrupted */
  signal?: AbortSignal
  onInterrupted?: () => void
}

export const LATENCY_RATES = [1000, 10_000]

/** The parts `--only` measures on their own. */
export type BenchPart = 'processor' | 'sink' | 'latency'

type ProcessorFigures = {
  msgs_per_s: number
  ratio_to_ceiling: number
  cpu_us_per_msg: number
  /** cpu_us_per_msg by thread (each the median of its own): what bounds it */
  cpu_us_per_msg_by_thread: ThreadCpu
  /** the broker's CPU time per message over the same span (the median of the runs'): only when the broker runs on this machine */
  broker_cpu_us_per_msg?: number
  wall_s: number
  startup_s: number
  peak_rss_mb: number
}
type SinkFigures = { rows_per_s: number; cpu_us_per_row: number; peak_rss_mb: number }

/**
 * The figures, keyed by what they are; every number here is a measurement. A part that failed is
 * named in `failed`; the parts before it have their figures, the parts from it on none.
 */
export interface BenchResult {
  machine: Record<string, string | number>
  settings: { messages?: number; repeat: number; quick: boolean; only?: BenchPart; sink_rows?: number; latency_seconds?: number; collector_seconds?: number }
  ceiling?: { record_bytes: number; producer_msgs_per_s: number; consumer_msgs_per_s: number }
  processor?: { at_least_once: ProcessorFigures; exactly_once?: ProcessorFigures }
  latency?: Record<string, { p50_ms: number; p99_ms: number; max_ms: number; messages: number }>
  sink?: { postgres?: SinkFigures; pglite?: SinkFigures }
  logins_sink?: { events_per_s: number; cpu_us_per_event: number; rows: number; peak_rss_mb: number }
  collector?: { cpu_ms_per_sample: number; peak_rss_mb: number }
  /** the targets whose figures were measured */
  targets: Record<string, BenchTarget>
  failed?: { part: string; error: string }
}

export interface BenchTarget {
  target: string
  value: number
  met: boolean
}

/** Below this 1-minute load average (on 2 cores) the machine counts as quiet for the absolute rate target. */
export const QUIET_LOAD_AVERAGE = 1.5

/**
 * The targets of the issue, each with the measured value and whether it is met; a target whose
 * figures were not measured (a part failed) is left out. The absolute processor rate holds "when
 * the machine is quiet": under more load it is reported with `met` false and `quiet` false, and
 * the ratio to the ceiling of the same run is the figure to judge.
 */
export function benchTargets(r: {
  processor?: BenchResult['processor']
  latency?: BenchResult['latency']
  sink?: BenchResult['sink']
  loadAverage: number
}): Record<string, BenchTarget & { quiet?: boolean }> {
  const at = (value: number, op: '>=' | '<=', limit: number, label = String(limit)): BenchTarget =>
    ({ target: `${op} ${label}`, value, met: op === '>=' ? value >= limit : value <= limit })
  const targets: Record<string, BenchTarget & { quiet?: boolean }> = {}
  const alo = r.processor?.at_least_once
  const eos = r.processor?.exactly_once
  if (alo) {
    const quiet = r.loadAverage < QUIET_LOAD_AVERAGE
    targets['processor.at_least_once.ratio_to_ceiling'] = at(alo.ratio_to_ceiling, '>=', 0.5)
    targets['processor.at_least_once.msgs_per_s'] = { ...at(alo.msgs_per_s, '>=', 90_000, '90000 (machine quiet)'), met: quiet && alo.msgs_per_s >= 90_000, quiet }
    targets['processor.at_least_once.cpu_us_per_msg'] = at(alo.cpu_us_per_msg, '<=', 12)
  }
  if (alo && eos) {
    targets['processor.exactly_once.ratio_to_at_least_once'] = at(Math.round((eos.msgs_per_s / alo.msgs_per_s) * 1000) / 1000, '>=', 0.9)
    targets['processor.peak_rss_mb'] = at(Math.max(alo.peak_rss_mb, eos.peak_rss_mb), '<=', 250)
  }
  for (const [rate, limitMs] of [[1000, 25], [10_000, 50]] as const) {
    const l = r.latency?.[`at_${rate}_msgs_per_s`]
    if (l) targets[`latency.at_${rate}_msgs_per_s.p99_ms`] = at(l.p99_ms, '<=', limitMs)
  }
  if (r.sink?.postgres) targets['sink.postgres.rows_per_s'] = at(r.sink.postgres.rows_per_s, '>=', 60_000)
  if (r.sink?.pglite) {
    targets['sink.pglite.rows_per_s'] = at(r.sink.pglite.rows_per_s, '>=', 30_000)
    targets['sink.pglite.peak_rss_mb'] = at(r.sink.pglite.peak_rss_mb, '<=', 500)
  }
  return targets
}

const MB = 1024 * 1024
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits
/** each thread's median over the runs, to 0.1 µs */
const byThread = (runs: ThreadCpu[]): ThreadCpu => byThreadKind((kind) => round(median(runs.map((r) => r[kind])), 1))

/**
 * `kpipe bench`: the broker's own ceiling, then the processor, end-to-end latency, the sink and
 * the collector, each part run as its own process the way an operator runs it, each figure the
 * median of `repeat` runs. Starts a temporary broker unless KAFKA_BROKERS is set, and an
 * ephemeral PostgreSQL unless DATABASE_URL is set; removes what it created.
 *
 * Each part's figures go to `measured` as soon as they are known. When a part fails after others
 * were measured, the result holds those figures and names the failed part (`failed`); when it
 * fails before anything was measured (no broker, no database), the error is thrown as it is.
 */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const { settings, status, repeat } = options
  const runId = `kpipe-bench-${Date.now().toString(36)}`
  const sinkRows = options.quick ? 2000 : 200_000
  const latencySeconds = options.quick ? 1 : 10
  const collectorSeconds = options.quick ? 1.5 : 10
  const machine = describeMachine()
  const result: BenchResult = {
    machine,
    settings: options.only === 'processor'
      ? { messages: options.messages, repeat, quick: options.quick, only: 'processor' }
      : options.only === 'sink'
        ? { repeat, quick: options.quick, only: 'sink', sink_rows: sinkRows }
        : options.only === 'latency'
          ? { repeat, quick: options.quick, only: 'latency', latency_seconds: latencySeconds }
          : { messages: options.messages, repeat, quick: options.quick, sink_rows: sinkRows, latency_seconds: latencySeconds, collector_seconds: collectorSeconds },
    targets: {},
  }
  /** the part under way, named as in the status line and in `failed` */
  let part = 'start-up'
  let anyMeasured = false
  const measured = (section: BenchSection) => {
    anyMeasured = true
    options.say?.(sectionLine(result, section, part))
  }
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
      options.only === 'processor' || options.only === 'latency' ? Promise.resolve(undefined) : settings.DATABASE_URL ? benchDatabase(settings.DATABASE_URL, runId, cleanups, (line) => (options.say ?? status)(line)) : startTemporaryPostgres(status, cleanups),
    ])
    bootstrap = brokerReady
    const connection = kafkaConnection({ ...settings, KAFKA_BROKERS: bootstrap.split(',') }, 'bench')
    const probe = new KafkaProbe(connection)
    cleanups.push(() => probe.close())
    const hashKey = randomBytes(32).toString('hex')
    const context: BenchContext = {
      connection, bootstrap, probe, runId, status,
      brokerPids: loopbackListeners(bootstrap),
      childEnv(overrides = {}) {
        const env: NodeJS.ProcessEnv = { ...process.env, KAFKA_BROKERS: bootstrap, KPIPE_HASH_KEY: hashKey, LOG_LEVEL: 'warn' }
        for (const [name, value] of Object.entries(overrides)) {
          if (value === undefined) delete env[name]
          else env[name] = value
        }
        return env
      },
    }
    // run i of a part: named in the status line, and in `failed` should it fail
    const runOf = <T>(label: string, i: number, run: () => Promise<T>) => {
      part = label
      if (options.signal?.aborted) throw new Error('interrupted')
      status(`${label} (run ${i + 1} of ${repeat})`)
      return run()
    }
    const runs = <T>(label: string, run: (i: number) => Promise<T>) => sequence(repeat, (i) => runOf(label, i, () => run(i)))

    // --only sink and --only latency: neither the preloaded login events nor the ceiling
    if (options.only === undefined || options.only === 'processor') {
      part = 'preloading login events'
      const preload = await preloadLogins(context, `${runId}-logins`, options.messages)
      cleanups.push(() => probe.deleteTopics([preload.topic]))
      const ceilingRuns = await runs('broker ceiling', async (i) => {
        const topic = `${runId}-ceiling-${i}`
        await probe.createTopics([topic])
        try {
          return await measureCeiling(bootstrap, topic, options.messages, preload.meanValueBytes)
        } finally {
          await probe.deleteTopics([topic]).catch(() => {})
        }
      })
      result.ceiling = {
        record_bytes: preload.meanValueBytes,
        producer_msgs_per_s: round(median(ceilingRuns.map((r) => r.producerMsgsPerS)), 0),
        consumer_msgs_per_s: round(median(ceilingRuns.map((r) => r.consumerMsgsPerS)), 0),
      }
      measured('ceiling')
      const ceilingRate = Math.min(result.ceiling.producer_msgs_per_s, result.ceiling.consumer_msgs_per_s)

      // the two modes in alternation (alternately): a drift of the machine over the part falls on both alike
      const processorLabel = (key: typeof PROCESSOR_MODES[number]) => `processor ${key === 'exactly_once' ? 'exactly-once' : 'at-least-once'}`
      const modeRuns = await alternately(repeat, PROCESSOR_MODES, (key, i) =>
        runOf(processorLabel(key), i, () => measureProcessor(context, preload, key === 'exactly_once', `${key.replaceAll('_', '-')}-${i}`, options.cpuProfileDir)))
      for (const key of PROCESSOR_MODES) {
        part = processorLabel(key)
        const results = modeRuns.get(key)!
        const msgsPerS = median(results.map((r) => r.msgsPerS))
        const figures = {
          msgs_per_s: round(msgsPerS, 0),
          ratio_to_ceiling: round(msgsPerS / ceilingRate, 3),
          cpu_us_per_msg: round(median(results.map((r) => r.cpuUsPerMsg)), 1),
          cpu_us_per_msg_by_thread: byThread(results.map((r) => r.cpuUsPerMsgByThread)),
          ...(context.brokerPids.length > 0 ? { broker_cpu_us_per_msg: round(median(results.map((r) => r.brokerCpuUsPerMsg!)), 1) } : {}),
          wall_s: round(median(results.map((r) => r.wallS)), 2),
          startup_s: round(median(results.map((r) => r.startupS)), 2),
          peak_rss_mb: round(Math.max(...results.map((r) => r.peakRssBytes)) / MB),
        }
        if (key === 'at_least_once') result.processor = { at_least_once: figures }
        else result.processor!.exactly_once = figures
        measured(`processor.${key}`)
      }
    }

    if (options.only === undefined || options.only === 'latency') {
      const latencyRuns = await runs('end-to-end latency', () => measureLatency(context, LATENCY_RATES, latencySeconds))
      const latency: NonNullable<BenchResult['latency']> = {}
      LATENCY_RATES.forEach((rate, i) => {
        const at = latencyRuns.map((r) => r[i]!)
        latency[`at_${rate}_msgs_per_s`] = {
          p50_ms: round(median(at.map((r) => r.p50Ms)), 2),
          p99_ms: round(median(at.map((r) => r.p99Ms)), 2),
          max_ms: round(median(at.map((r) => r.maxMs)), 2),
          messages: median(at.map((r) => r.messages)),
        }
      })
      result.latency = latency
      measured('latency')
    }

    if (options.only === undefined || options.only === 'sink') {
      for (const [key, url] of [['postgres', postgresUrl!], ['pglite', undefined]] as const) {
        const results = await runs(`sink into ${key === 'postgres' ? 'PostgreSQL' : 'PGlite'}`, (i) => measureSink(context, url, sinkRows, `sink-${key}-${i}`, options.cpuProfileDir))
        result.sink = {
          ...result.sink,
          [key]: {
            rows_per_s: round(median(results.map((r) => r.rowsPerS)), 0),
            cpu_us_per_row: round(median(results.map((r) => r.cpuUsPerRow)), 1),
            peak_rss_mb: round(Math.max(...results.map((r) => r.peakRssBytes)) / MB),
          },
        }
        measured(`sink.${key}`)
      }
    }

    // the logins sink and the collector: only in the whole bench
    if (options.only === undefined) {
      const loginSinkRuns = await runs('logins sink into PostgreSQL', (i) => measureLoginSink(context, postgresUrl!, sinkRows, `logins-sink-${i}`, options.cpuProfileDir))
      result.logins_sink = { events_per_s: round(median(loginSinkRuns.map((r) => r.eventsPerS)), 0), cpu_us_per_event: round(median(loginSinkRuns.map((r) => r.cpuUsPerEvent)), 1), rows: median(loginSinkRuns.map((r) => r.rows)), peak_rss_mb: round(Math.max(...loginSinkRuns.map((r) => r.peakRssBytes)) / MB) }
      measured('logins_sink')

      const collectorRuns = await runs('collector', () => measureCollector(context, collectorSeconds))
      result.collector = {
        cpu_ms_per_sample: round(median(collectorRuns.map((r) => r.cpuMsPerSample)), 3),
        peak_rss_mb: round(Math.max(...collectorRuns.map((r) => r.peakRssBytes)) / MB),
      }
      measured('collector')
    }
  } catch (error) {
    // nothing measured yet (no broker, no database, or the first part of --only sink failed): the error as it is, for the CLI's one line
    if (!anyMeasured || options.signal?.aborted) throw error
    result.failed = { part, error: errorLine(error) }
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
    await cleanUp()
  }
  machine.load_average_1m_end = round(loadavg()[0]!, 2)
  result.targets = benchTargets({ processor: result.processor, latency: result.latency, sink: result.sink, loadAverage: Math.max(Number(machine.load_average_1m_start), machine.load_average_1m_end) })
  if (result.logins_sink) result.targets['logins_sink.events_per_s'] = { target: '>= 100000', value: result.logins_sink.events_per_s, met: result.logins_sink.events_per_s >= 100_000 }
  return result
}

/** The processor's two modes, in the order each round runs them. */
const PROCESSOR_MODES = ['at_least_once', 'exactly_once'] as const

/**
 * `repeat` rounds, each running every one of `keys` once, in order: the runs of each key, by
 * key. The processor's modes alternate so: run one after the other (all of one mode, then all of
 * the other), the later mode met a machine that had changed under it. On this machine the broker's
 * writes into memory the bench had not yet touched cost it twice the system time from about the
 * fourth processor run on, in whichever mode ran then: exactly-once measured 0.81–0.87 of
 * at-least-once when it ran second, 0.91–0.995 when it ran first (docs/benchmarks.md, "The
 * processor's two modes in alternation, and the broker's CPU").
 */
export async function alternately<K extends string, T>(repeat: number, keys: readonly K[], run: (key: K, i: number) => Promise<T>): Promise<Map<K, T[]>> {
  const results = new Map<K, T[]>(keys.map((key) => [key, []]))
  for (let i = 0; i < repeat; i++) for (const key of keys) results.get(key)!.push(await run(key, i))
  return results
}

async function sequence<T>(n: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = []
  for (let i = 0; i < n; i++) results.push(await run(i))
  return results
}

async function startTemporaryBroker(status: (line: string) => void, cleanups: (() => Promise<void> | void)[]): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-bench-kafka-'))
  let forget = () => {}
  cleanups.push(async () => {
    await stopLocalBroker(dataDir).catch(() => {})
    rmSync(dataDir, { recursive: true, force: true })
    forget()
  })
  status('starting a temporary Kafka broker')
  // a second Ctrl-C exits at once, also during the clean stop: the broker's JVM (detached, its own group) and its dir go with the bench
  const broker = await startLocalBroker({ dataDir, port: await freePort(), controllerPort: await freePort(), heapMb: 1024, onStatus: status, ownedByThisProcess: true })
  forget = beforeImmediateExit(() => rmSync(dataDir, { recursive: true, force: true }))
  return broker.bootstrap
}

async function startTemporaryPostgres(status: (line: string) => void, cleanups: (() => Promise<void> | void)[]): Promise<string> {
  status('starting an ephemeral PostgreSQL')
  const server: PostgresServer = startPostgres(await freePort())
  // on a second Ctrl-C too, also during the clean stop (pg_ctl stop is synchronous, and quick)
  const forget = beforeImmediateExit(() => removePostgres(server))
  cleanups.push(() => {
    removePostgres(server)
    forget()
  })
  return server.url
}

/**
 * With DATABASE_URL set, the sink is measured in a database of its own on that server, dropped
 * afterwards; where the role may not create databases, in the given one (the bench deletes
 * its rows, which carry host names of this run only). A server that cannot be reached is said at
 * once: the parts before the sinks are still measured, and the sinks fail when their turn comes.
 */
async function benchDatabase(url: string, runId: string, cleanups: (() => Promise<void> | void)[], warn: (line: string) => void): Promise<string> {
  const name = runId.replaceAll('-', '_')
  const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  try {
    await admin.connect()
  } catch (error) {
    await admin.end().catch(() => {})
    warn(`PostgreSQL at ${redactUrl(url)} (DATABASE_URL) cannot be reached (${errorLine(error)}): the sinks into PostgreSQL will fail`)
    return url
  }
  try {
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
