import { Command } from 'commander'
import { loadSettings, secretValues } from '../../shell/settings.ts'
import { createLogger, registerSecrets } from '../../shell/log.ts'
import { runUp } from '../../up/run-up.ts'
import { RecentLines } from '../../up/recent-lines.ts'
import { intFlag, numberFlag, untilSignal } from '../context.ts'
import { jarProgress } from '../progress.ts'
import { UserError } from '../../shell/errors.ts'

export function upCommand(): Command {
  return new Command('up')
    .description('the whole stack on this machine: a local Kafka broker (unless KAFKA_BROKERS is set), embedded PGlite (unless DATABASE_URL is set), topics, login generator, processor, metrics collector, sink and dashboard; Ctrl-C stops everything')
    .option('--kafka-port <port>', 'port of the local broker (its controller takes the next one)', intFlag('kafka-port', 1, 65534), 9092)
    .option('--port <port>', 'dashboard port (PORT, default 8080)')
    .option('--rate <n>', 'login events generated per second', numberFlag('rate', 0), 50)
    .option('--invalid-ratio <r>', 'share of malformed, incomplete or stale generated events', (v: string) => {
      const n = Number(v)
      if (v.trim() === '' || !(n >= 0 && n <= 1)) throw new UserError(`invalid value for --invalid-ratio: ${JSON.stringify(v)}: expected a number from 0 to 1`)
      return n
    }, 0.05)
    .option('--partitions <n>', 'partitions of each topic created on the local broker', intFlag('partitions', 1, 1000), 3)
    .action(async (options: { kafkaPort: number; port?: string; rate: number; invalidRatio: number; partitions: number }, command: Command) => {
      const flags = command.optsWithGlobals() as { brokers?: string; dataDir?: string; logLevel?: string }
      const settings = loadSettings(process.env, {
        KAFKA_BROKERS: flags.brokers,
        KPIPE_DATA_DIR: flags.dataDir,
        LOG_LEVEL: flags.logLevel,
        PORT: options.port,
      })
      registerSecrets(secretValues(settings))
      const recent = new RecentLines()
      const log = createLogger(settings.LOG_LEVEL, 'kpipe', recent)
      const stopRequested = untilSignal((signal) => log.info({ part: 'up' }, `${signal}: stopping everything (Ctrl-C again to exit at once)`))
      process.exitCode = await runUp({
        settings,
        log,
        brokersGiven: Boolean(flags.brokers || process.env.KAFKA_BROKERS),
        kafkaPort: options.kafkaPort,
        rate: options.rate,
        invalidRatio: options.invalidRatio,
        partitions: options.partitions,
        stopRequested,
        recentLines: (part) => recent.of(part),
        onJarProgress: jarProgress(),
      })
    })
}
