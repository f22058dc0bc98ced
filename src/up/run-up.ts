import { hostname } from 'node:os'
import { resolve } from 'node:path'
import type { Logger } from '../shell/log.ts'
import type { Settings } from '../shell/settings.ts'
import { registerSecrets } from '../shell/log.ts'
import { SetupError, UserError } from '../shell/errors.ts'
import { sleep } from '../shell/backoff.ts'
import { describe } from '../shell/kafka/consumer-loop.ts'
import { kafkaConnection } from '../shell/kafka/connection.ts'
import { createProducer } from '../shell/kafka/producer.ts'
import { ensureTopics, pipelineTopics } from '../shell/kafka/topics.ts'
import { openDatabase, type Database } from '../shell/postgres/database.ts'
import { startLocalBroker, stopLocalBroker } from '../shell/broker/local-broker.ts'
import type { ResolveProgress } from '../shell/broker/jars.ts'
import { startDashboard } from '../dashboard/server.ts'
import { startSink } from '../host-metrics/sink/sink.ts'
import { startLoginSink } from '../logins/sink/run-login-sink.ts'
import { Collector } from '../host-metrics/collector/collector.ts'
import { runProcessor } from '../logins/process/run-processor.ts'
import { runGenerator } from '../logins/generate/run-generator.ts'
import { localHashKey } from './hash-key.ts'

export interface UpOptions {
  settings: Settings
  log: Logger
  /** was KAFKA_BROKERS given? if not, `up` runs the local broker */
  brokersGiven: boolean
  kafkaPort: number
  /** login events per second from the generator */
  rate: number
  invalidRatio: number
  partitions: number
  /** resolves when the user asks to stop (SIGINT/SIGTERM) */
  stopRequested: Promise<unknown>
  /** the last log lines of a part, for the crash report */
  recentLines: (part: string) => string[]
  onJarProgress?: ResolveProgress
  print?: (line: string) => void
}

/** A running part of the pipeline: `done` settles when it ends by itself; `stop` ends it cleanly. */
interface Part {
  name: string
  done: Promise<unknown>
  stop(): Promise<void>
}

/** How long each part may take to stop before `up` moves on to the next. */
const PART_STOP_BUDGET_MS = 8000

/**
 * `kpipe up`: the whole stack in this process (the broker is its own JVM): local broker unless
 * KAFKA_BROKERS is set, PGlite unless DATABASE_URL is set, topics, dashboard, sink, processor,
 * collector and generator. Parts stop in the order generator, processor, collector, sink,
 * dashboard, broker. A part that ends by itself is reported with its last log lines and the
 * rest is stopped: no half-running pipeline. Resolves to the exit code.
 */
export async function runUp(options: UpOptions): Promise<number> {
  const { log } = options
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`))
  const settings: Settings = { ...options.settings }
  const dataDir = resolve(settings.KPIPE_DATA_DIR)
  const parts: Part[] = []
  let startedBroker = false
  let db: Database | undefined
  let crashed: { part: string; error: unknown } | undefined
  /** set once stopping begins: from then on parts ending is expected, not a crash */
  let stopping = false

  const status = (line: string) => log.info({ part: 'up' }, line)
  const stopAll = async () => {
    // reverse start order: generator, processor, collector, sink, dashboard
    for (const part of [...parts].reverse()) {
      status(`stopping ${part.name}`)
      await Promise.race([part.stop().catch((error: unknown) => log.warn({ part: part.name, err: error }, `${part.name} did not stop cleanly: ${describe(error)}`)), sleep(PART_STOP_BUDGET_MS)])
    }
    if (db) await db.close().catch(() => {})
    if (startedBroker) {
      status('stopping the local Kafka broker')
      await stopLocalBroker(settings.KPIPE_DATA_DIR)
    }
  }

  try {
    if (!options.brokersGiven) {
      status(`starting the local Kafka broker (data in ${dataDir}/kafka)`)
      const broker = await startLocalBroker({
        dataDir,
        port: options.kafkaPort,
        ...(options.onJarProgress ? { onProgress: options.onJarProgress } : {}),
        onStatus: (line) => status(`kafka: ${line}`),
      })
      startedBroker = !broker.alreadyRunning
      settings.KAFKA_BROKERS = [broker.bootstrap]
      status(broker.alreadyRunning ? `using the local broker already running at ${broker.bootstrap}` : `Kafka is up at ${broker.bootstrap}`)
    }
    if (!settings.KPIPE_HASH_KEY) {
      const key = localHashKey(dataDir)
      settings.KPIPE_HASH_KEY = key.key
      registerSecrets([key.key])
      status(`${key.created ? 'created' : 'using'} the local hash key ${key.file}`)
    }

    const connection = kafkaConnection(settings, 'up')
    const topics = pipelineTopics(settings)
    const created = await ensureTopics(connection, topics.map((name) => ({ name, partitions: options.brokersGiven ? -1 : options.partitions, replicationFactor: -1 })))
    status(`topics: ${created.created.length} created, ${created.existing.length} already there`)

    db = await openDatabase(settings)
    status(`database: ${db.description}`)

    const partLog = (name: string) => log.child({ part: name })
    const watch = (part: Part) => {
      parts.push(part)
      part.done.then(
        () => {
          if (!stopping) crashed ??= { part: part.name, error: new Error(`${part.name} ended unexpectedly`) }
        },
        (error: unknown) => {
          if (!stopping) crashed ??= { part: part.name, error }
        },
      ).finally(() => wakeUp())
    }
    let wakeUp: () => void = () => {}
    const somethingEnded = new Promise<void>((r) => (wakeUp = r))

    const dashboard = await startDashboard(settings, partLog('dashboard'), { db })
    watch({ name: 'dashboard', done: new Promise(() => {}), stop: () => dashboard.close() })

    const sink = await startSink({ settings, log: partLog('sink'), groupId: 'kpipe-metrics-sink', db })
    watch({ name: 'sink', done: sink.done, stop: () => sink.stop() })
    const loginSink = await startLoginSink({ settings, log: partLog('logins-sink'), groupId: 'kpipe-logins-sink', db })
    watch({ name: 'logins-sink', done: loginSink.done, stop: () => loginSink.stop() })

    const collectorProducer = createProducer(kafkaConnection(settings, 'metrics-collector'))
    const collector = new Collector({ producer: collectorProducer, topic: settings.TOPIC_PERFORMANCE, host: hostname(), intervalMs: settings.METRICS_INTERVAL, log: partLog('collector') })
    collector.start()
    watch({ name: 'collector', done: new Promise(() => {}), stop: async () => { await collector.stop(); await collectorProducer.close() } })

    const processorStop = new AbortController()
    const processor = runProcessor({ settings, log: partLog('processor'), groupId: 'kpipe-logins', from: 'earliest', exactlyOnce: false, signal: processorStop.signal })
    watch({ name: 'processor', done: processor, stop: async () => { processorStop.abort(); await processor } })

    const generatorStop = new AbortController()
    const generator = runGenerator({ settings, log: partLog('generator'), rate: options.rate, invalidRatio: options.invalidRatio, seed: Date.now() % 2 ** 32, signal: generatorStop.signal })
    watch({ name: 'generator', done: generator, stop: async () => { generatorStop.abort(); await generator } })

    print('')
    print(`kpipe is running.`)
    print(`  dashboard   ${dashboard.url}`)
    print(`  kafka       ${settings.KAFKA_BROKERS.join(',')}${startedBroker ? ' (local broker)' : ''}`)
    print(`  database    ${db.description}`)
    print(`  logins      ${options.rate}/s generated into ${settings.TOPIC_LOGINS} → ${settings.TOPIC_PROCESSED}, ${settings.TOPIC_CLEANED}, ${settings.TOPIC_ERRORS}`)
    print(`  metrics     ${hostname()} every ${settings.METRICS_INTERVAL} ms into ${settings.TOPIC_PERFORMANCE} → table performance`)
    print(`  topics      ${topics.join(', ')}`)
    print(`  tail one    npx kpipe tail ${settings.TOPIC_PROCESSED} --brokers ${settings.KAFKA_BROKERS.join(',')}`)
    print(`Press Ctrl-C to stop everything.`)
    print('')

    await Promise.race([options.stopRequested, somethingEnded])
  } catch (error) {
    crashed ??= { part: 'up', error }
  }
  stopping = true

  if (crashed && !(crashed.part === 'up' && parts.length === 0)) {
    const lines = options.recentLines(crashed.part)
    log.error({ part: 'up' }, `${crashed.part} failed: ${describe(crashed.error)}; stopping the rest`)
    if (lines.length > 0) process.stderr.write(`last lines of ${crashed.part}:\n${lines.map((l) => `  ${l}`).join('\n')}\n`)
  } else {
    status('stopping: generator, processor, collector, sink, dashboard, broker')
  }
  await stopAll()
  status('stopped')
  // a prerequisite that failed before anything ran (no Java, a port in use) reads best as the CLI's one-line error
  if (crashed?.part === 'up' && parts.length === 0 && (crashed.error instanceof SetupError || crashed.error instanceof UserError)) throw crashed.error
  return crashed ? 1 : 0
}
