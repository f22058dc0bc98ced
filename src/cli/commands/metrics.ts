import { hostname } from 'node:os'
import type { Server } from 'node:http'
import { Command, Option } from 'commander'
import { commandContext, intFlag, untilSignal } from '../context.ts'
import { SetupError, UserError } from '../../shell/errors.ts'
import { sleep } from '../../shell/backoff.ts'
import { describe } from '../../shell/kafka/connection-errors.ts'
import { serveMetrics } from '../../shell/observability/prometheus.ts'
import { StoppedWaiting } from '../../shell/retry.ts'

/** SPEC.md: SIGINT/SIGTERM stop cleanly within 10 s. */
const SHUTDOWN_BUDGET_MS = 8000

export function metricsCommand(): Command {
  const metrics = new Command('metrics').description('the host metrics pipeline: sample this host → performance topic → PostgreSQL')

  metrics
    .command('collect')
    .description('sample this host on a drift-free schedule and produce each sample to the performance topic, keyed by host')
    .option('--interval <duration>', 'sampling interval: 250ms, 1s or milliseconds, at least 100ms (METRICS_INTERVAL, default 500ms)')
    .option('--host <name>', 'host name the samples carry (default: this machine\'s host name)')
    .option('--disk-path <path>', 'the filesystem whose usage is disk_usage', '/')
    .option('--metrics-port <port>', 'serve /metrics, /healthz and /readyz on this port (0: any free port, logged at start)', intFlag('metrics-port', 0, 65535))
    .action(async (options: { host?: string; diskPath: string; metricsPort?: number }, command: Command) => {
      const { settings, log } = commandContext(command, { interval: 'METRICS_INTERVAL' })
      const host = options.host?.trim() || hostname()
      if (host.length > 255) throw new UserError(`invalid value for --host: expected at most 255 characters`)
      // each subcommand's work is imported when it runs: the collector holds no database driver
      const { CollectorComponent } = await import('../../host-metrics/collector/collector.ts')
      const collector = new CollectorComponent({ settings, log, host, intervalMs: settings.METRICS_INTERVAL, diskPath: options.diskPath })
      const stop = new AbortController()
      void untilSignal((signal) => {
        log.info(`${signal}: stopping the collector`)
        stop.abort()
      })
      const server = options.metricsPort !== undefined ? await serveMetrics(options.metricsPort, settings.HOST, log, () => collector.ready()) : undefined
      try {
        // a signal while waiting for Kafka ends the command cleanly
        await collector.start(stop.signal)
        await collector.done
      } finally {
        await closeServer(server)
      }
      log.info(`collector stopped; ${collector.collector?.sent ?? 0} sample(s) sent`)
    })

  metrics
    .command('sink')
    .description('consume the performance topic into the performance table of PostgreSQL (DATABASE_URL) or embedded PGlite')
    .option('--group <id>', 'consumer group id', 'kpipe-metrics-sink')
    .addOption(new Option('--from <where>', 'where a group with no committed offsets starts').choices(['earliest', 'latest']).default('earliest'))
    .option('--retention <duration>', 'delete rows older than this: 7d, 12h, or seconds (METRICS_RETENTION)')
    .option('--metrics-port <port>', 'serve /metrics, /healthz and /readyz on this port (0: any free port, logged at start)', intFlag('metrics-port', 0, 65535))
    .action(async (options: { group: string; from: 'earliest' | 'latest'; metricsPort?: number }, command: Command) => {
      const { settings, log } = commandContext(command, { retention: 'METRICS_RETENTION' })
      const stop = new AbortController()
      const stopped = untilSignal(() => stop.abort())
      const { startSink } = await import('../../host-metrics/sink/sink.ts')
      const sink = await startSink({ settings, log, groupId: options.group, from: options.from, signal: stop.signal }).catch(stoppedOrThrow)
      if (sink === STOPPED) return
      const server = options.metricsPort !== undefined ? await serveMetrics(options.metricsPort, settings.HOST, log, () => sink.ready()) : undefined
      let refused: SetupError | undefined
      try {
        const outcome = await Promise.race([stopped, sink.done.then(() => undefined)])
        if (outcome) log.info(`${outcome}: stopping the sink`)
      } catch (error) {
        // refused credentials or certificates: one clear line from the CLI, no stack
        if (error instanceof SetupError) refused = error
        else log.fatal({ err: error }, `sink stopped: ${describe(error)}`)
        process.exitCode = 1
      } finally {
        await Promise.race([sink.stop(), sleep(SHUTDOWN_BUDGET_MS)])
        await closeServer(server)
      }
      if (refused) throw refused
      log.info(`sink stopped; ${sink.loop.records} record(s) in ${sink.loop.batches} batch(es) committed`)
    })
  return metrics
}

const STOPPED = Symbol('stopped')

/** A signal during a start-up wait (for Kafka, for the database) is a clean stop; anything else is rethrown. */
function stoppedOrThrow(error: unknown): typeof STOPPED {
  if (error instanceof StoppedWaiting) return STOPPED
  throw error
}

function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve()
  return new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
}
