import { hostname } from 'node:os'
import { resolve } from 'node:path'
import type { Logger } from '../shell/log.ts'
import type { Settings } from '../shell/settings.ts'
import { registerSecrets } from '../shell/log.ts'
import { SetupError, UserError } from '../shell/errors.ts'
import { sleep } from '../shell/backoff.ts'
import { describe, kafkaCommandError } from '../shell/kafka/connection-errors.ts'
import { currentConnection, kafkaConnection } from '../shell/kafka/connection.ts'
import { StoppedWaiting } from '../shell/retry.ts'
import { ensureTopics, pipelineTopics } from '../shell/kafka/topics.ts'
import { openDatabase, type Database } from '../shell/postgres/database.ts'
import { startLocalBroker, stopLocalBroker } from '../shell/broker/local-broker.ts'
import type { ResolveProgress } from '../shell/broker/jars.ts'
import { DashboardComponent } from '../dashboard/server.ts'
import { metricsSinkStage } from '../host-metrics/sink/sink.ts'
import { loginSinkStage } from '../logins/sink/run-login-sink.ts'
import { CollectorComponent } from '../host-metrics/collector/collector.ts'
import { loginProcessorStage } from '../logins/process/run-processor.ts'
import { TaskComponent, type Component } from '../shell/stage.ts'
import { runGenerator } from '../logins/generate/run-generator.ts'
import { localHashKey } from './hash-key.ts'
import { claimInstance } from './instance-lock.ts'
import { preflight } from './preflight.ts'

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

/** A running part of the pipeline: a component and what stops it. */
interface Part {
  component: Component
  stop: AbortController
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
  /** a stop asked for while the stack starts: what is starting is stopped, nothing more is started */
  const startup = new AbortController()
  void options.stopRequested.then(() => startup.abort())
  const unlessStopped = () => {
    if (startup.signal.aborted) throw new StoppedWaiting('stopped during start-up')
  }

  const status = (line: string) => log.info({ part: 'up' }, line)
  const stopAll = async () => {
    // reverse start order: generator, processor, collector, sink, dashboard
    for (const part of [...parts].reverse()) {
      const name = part.component.name
      status(`stopping ${name}`)
      part.stop.abort()
      await Promise.race([part.component.done.catch((error: unknown) => log.warn({ part: name, err: error }, `${name} did not stop cleanly: ${describe(error)}`)), sleep(PART_STOP_BUDGET_MS)])
    }
    if (db) await db.close().catch(() => {})
    if (startedBroker) {
      status('stopping the local Kafka broker')
      await stopLocalBroker(settings.KPIPE_DATA_DIR)
    }
  }

  // one `up` per data dir, and what can be checked before anything starts
  const instance = claimInstance(dataDir)
  try {
    await preflight({ settings, brokersGiven: options.brokersGiven, kafkaPort: options.kafkaPort })
  } catch (error) {
    instance.release()
    throw error
  }

  try {
    if (!options.brokersGiven) {
      status(`starting the local Kafka broker (data in ${dataDir}/kafka)`)
      const broker = await startLocalBroker({
        dataDir,
        port: options.kafkaPort,
        ...(options.onJarProgress ? { onProgress: options.onJarProgress } : {}),
        onStatus: (line) => status(`kafka: ${line}`),
        signal: startup.signal,
        // a second Ctrl-C kills it (SIGKILL), until it is stopped
        ownedByThisProcess: true,
        // a broker that an earlier `up` started and could not stop (killed) is this run's to stop
        takeOver: (running) => instance.previous?.brokerPid === running.pid,
      })
      const leftover = broker.alreadyRunning && broker.owned
      startedBroker = broker.owned
      if (startedBroker) instance.update({ brokerPid: broker.pid })
      settings.KAFKA_BROKERS = [broker.bootstrap]
      if (leftover) status(`taking over the local broker at ${broker.bootstrap} (pid ${broker.pid}) that an earlier kpipe up (pid ${instance.previous!.pid}) left running; it stops with this one`)
      else if (broker.alreadyRunning) status(`using the local broker already running at ${broker.bootstrap} (pid ${broker.pid}, started by kpipe kafka start); it keeps running after this stops: kpipe kafka stop`)
      else status(`Kafka is up at ${broker.bootstrap}`)
    }
    if (!settings.KPIPE_HASH_KEY) {
      const key = localHashKey(dataDir)
      settings.KPIPE_HASH_KEY = key.key
      registerSecrets([key.key])
      status(`${key.created ? 'created' : 'using'} the local hash key ${key.file}`)
    }

    unlessStopped()
    const connection = kafkaConnection(settings, 'up')
    const topics = pipelineTopics(settings)
    const created = await ensureTopics(connection, topics.map((name) => ({ name, partitions: options.brokersGiven ? -1 : options.partitions, replicationFactor: -1 })))
    status(`topics: ${created.created.length} created, ${created.existing.length} already there`)

    unlessStopped()
    db = await openDatabase(settings)
    status(`database: ${db.description}`)
    unlessStopped()

    const partLog = (name: string) => log.child({ part: name })
    let wakeUp: () => void = () => {}
    const somethingEnded = new Promise<void>((r) => (wakeUp = r))
    /** starts a component; from then on its ending by itself is a crash that stops the rest */
    const run = async (component: Component) => {
      const part = { component, stop: new AbortController() }
      // stoppable while it starts (e.g. waiting for the database); not a part that ran if it fails to start
      parts.push(part)
      // a stop asked for while it starts (e.g. waiting for Kafka) ends that wait
      const stopStarting = () => part.stop.abort()
      startup.signal.addEventListener('abort', stopStarting, { once: true })
      try {
        await component.start(part.stop.signal)
      } catch (error) {
        parts.splice(parts.indexOf(part), 1)
        throw error
      } finally {
        startup.signal.removeEventListener('abort', stopStarting)
      }
      // once a stop is asked for (also during start-up), a part that ends has done what it was told
      const expected = () => stopping || startup.signal.aborted
      component.done.then(
        () => {
          if (!expected()) crashed ??= { part: component.name, error: new Error(`${component.name} ended unexpectedly`) }
        },
        (error: unknown) => {
          if (!expected()) crashed ??= { part: component.name, error }
        },
      ).finally(() => wakeUp())
    }

    // the parts, in start order (they stop in reverse): each one the same lifecycle
    const dashboard = new DashboardComponent(settings, partLog('dashboard'), { db })
    const components: Component[] = [
      dashboard,
      metricsSinkStage({ settings, log: partLog('sink'), groupId: 'kpipe-metrics-sink', db }).component,
      loginSinkStage({ settings, log: partLog('logins-sink'), groupId: 'kpipe-logins-sink', db }).component,
      new CollectorComponent({ settings, log: partLog('collector'), host: hostname(), intervalMs: settings.METRICS_INTERVAL }),
      loginProcessorStage({ settings, log: partLog('processor'), groupId: 'kpipe-logins', from: 'earliest', exactlyOnce: false }).component,
      new TaskComponent('generator', (signal) => runGenerator({ settings, log: partLog('generator'), rate: options.rate, invalidRatio: options.invalidRatio, seed: Date.now() % 2 ** 32, signal })),
    ]
    for (const component of components) {
      if (crashed) break
      unlessStopped()
      await run(component)
      // a second `kpipe up` on this data dir names the dashboard that runs
      if (component === dashboard && dashboard.url) instance.update({ url: dashboard.url })
    }

    unlessStopped()
    // one write: whoever reads "kpipe is running." (a user's pipe, a test) has the whole banner
    print([
      '',
      `kpipe is running.`,
      `  dashboard   ${dashboard.url ?? ''}`,
      `  kafka       ${settings.KAFKA_BROKERS.join(',')}${startedBroker ? ' (local broker)' : ''}`,
      `  database    ${db.description}`,
      `  logins      ${options.rate}/s generated into ${settings.TOPIC_LOGINS} → ${settings.TOPIC_PROCESSED}, ${settings.TOPIC_CLEANED}, ${settings.TOPIC_ERRORS}`,
      `  metrics     ${hostname()} every ${settings.METRICS_INTERVAL} ms into ${settings.TOPIC_PERFORMANCE} → table performance`,
      `  topics      ${topics.join(', ')}`,
      `  tail one    npx kpipe tail ${settings.TOPIC_PROCESSED} --brokers ${settings.KAFKA_BROKERS.join(',')}`,
      `Press Ctrl-C to stop everything.`,
      '',
    ].join('\n'))

    await Promise.race([options.stopRequested, somethingEnded])
  } catch (error) {
    // a Ctrl-C during start-up is a clean stop of what started, not a failure
    if (!(error instanceof StoppedWaiting && startup.signal.aborted)) crashed ??= { part: 'up', error }
  }
  stopping = true

  // a prerequisite that failed before anything ran (no Java, a port in use, Kafka unreachable or refusing) reads best as the CLI's one-line error
  let oneLine: Error | undefined
  if (crashed?.part === 'up' && parts.length === 0) {
    oneLine = crashed.error instanceof SetupError || crashed.error instanceof UserError ? crashed.error : kafkaCommandError(crashed.error, currentConnection())
  }
  if (crashed && !oneLine) {
    const lines = options.recentLines(crashed.part)
    log.error({ part: 'up' }, `${crashed.part} failed: ${describe(crashed.error)}; stopping the rest`)
    if (lines.length > 0) process.stderr.write(`last lines of ${crashed.part}:\n${lines.map((l) => `  ${l}`).join('\n')}\n`)
  } else {
    status(`stopping: generator, processor, collector, sink, dashboard${startedBroker ? ', broker' : ''}`)
  }
  await stopAll()
  instance.release()
  status('stopped')
  if (oneLine) throw oneLine
  return crashed ? 1 : 0
}
