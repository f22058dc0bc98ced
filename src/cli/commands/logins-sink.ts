import type { Server } from 'node:http'
import { Command } from 'commander'
import { commandContext, intFlag, untilSignal } from '../context.ts'
import { SetupError } from '../../shell/errors.ts'
import { sleep } from '../../shell/backoff.ts'
import { describe } from '../../shell/kafka/connection-errors.ts'
import { serveMetrics } from '../../shell/observability/prometheus.ts'
import { StoppedWaiting } from '../../shell/retry.ts'

const SHUTDOWN_BUDGET_MS = 8000

/** `kpipe logins sink`: login activity per minute → PostgreSQL (or PGlite), exactly once. */
export function loginsSinkCommand(): Command {
  return new Command('sink')
    .description('count processed-output, cleaned-data and processed-errors per minute into login_activity of PostgreSQL (DATABASE_URL) or embedded PGlite, exactly once')
    .option('--group <id>', 'consumer group id, and the name of its offsets in kpipe_offsets; processes with the same group share the partitions', 'kpipe-logins-sink')
    .option('--retention <duration>', 'delete minutes older than this: 30d, 12h, or seconds (LOGIN_ACTIVITY_RETENTION)')
    .option('--batch-size <n>', 'most records counted per transaction', intFlag('batch-size', 1, 100_000), 5000)
    .option('--metrics-port <port>', 'serve /metrics, /healthz and /readyz on this port (0: any free port, logged at start)', intFlag('metrics-port', 0, 65535))
    .action(async (options: { group: string; batchSize: number; metricsPort?: number }, command: Command) => {
      const { settings, log } = commandContext(command, { retention: 'LOGIN_ACTIVITY_RETENTION' })
      const stop = new AbortController()
      const stopped = untilSignal(() => stop.abort())
      const { startLoginSink } = await import('../../logins/sink/run-login-sink.ts')
      let sink
      try {
        sink = await startLoginSink({ settings, log, groupId: options.group, maxBatchSize: options.batchSize, signal: stop.signal })
      } catch (error) {
        // a signal during a start-up wait (for Kafka, for the database) is a clean stop
        if (error instanceof StoppedWaiting) return
        throw error
      }
      const running = sink
      const server = options.metricsPort !== undefined ? await serveMetrics(options.metricsPort, settings.HOST, log, () => running.ready()) : undefined
      let refused: SetupError | undefined
      try {
        const outcome = await Promise.race([stopped, sink.done.then(() => undefined)])
        if (outcome) log.info(`${outcome}: stopping the logins sink`)
      } catch (error) {
        if (error instanceof SetupError) refused = error
        else log.fatal({ err: error }, `logins sink stopped: ${describe(error)}`)
        process.exitCode = 1
      } finally {
        await Promise.race([sink.stop(), sleep(SHUTDOWN_BUDGET_MS)])
        if (server) {
          server.closeAllConnections()
          await new Promise<void>((resolve) => (server as Server).close(() => resolve()))
        }
      }
      if (refused) throw refused
      log.info(`logins sink stopped; ${sink.counted} record(s) counted, ${sink.skipped} skipped as counted before`)
    })
}
