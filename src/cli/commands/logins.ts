import { Command, Option } from 'commander'
import { UserError } from '../../shell/errors.ts'
import { commandContext, intFlag, numberFlag, untilSignal } from '../context.ts'
import { statusLine } from '../progress.ts'
import { replayCommand } from './replay.ts'
import { loginsSinkCommand } from './logins-sink.ts'

// Each subcommand's work is imported when it runs, not with the command's options: the processor
// holds no database driver, the sink no generator (docs/decisions.md, "A command loads what it runs").

export function loginsCommand(): Command {
  const logins = new Command('logins').description('the user-login pipeline: generate and process')

  logins
    .command('generate')
    .description('produce synthetic login events to TOPIC_LOGINS (default user-login)')
    .option('--rate <n>', 'messages per second, steady (0: as fast as possible)', numberFlag('rate', 0), 10)
    .option('--count <n>', 'stop after this many messages (default: run until Ctrl-C)', intFlag('count', 1))
    .option('--invalid-ratio <r>', 'share of malformed, incomplete, mistyped or stale events, 0 to 1', ratioFlag, 0)
    .option('--seed <n>', 'seed of the generator: the same seed gives the same events (timestamps aside)', intFlag('seed', 0, 2 ** 32 - 1))
    .action(async (options: { rate: number; count?: number; invalidRatio: number; seed?: number }, command: Command) => {
      const { settings, log } = commandContext(command)
      const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32)
      const stop = new AbortController()
      void untilSignal(() => stop.abort())
      const line = statusLine()
      const target = options.count === undefined ? '' : ` of ${options.count}`
      let lastUpdate = 0
      const { runGenerator } = await import('../../logins/generate/run-generator.ts')
      const result = await runGenerator({
        settings, log, seed, signal: stop.signal,
        rate: options.rate, count: options.count, invalidRatio: options.invalidRatio,
        onProgress: (sent, ms) => {
          if (!process.stderr.isTTY || Date.now() - lastUpdate < 200) return
          lastUpdate = Date.now()
          line.update(`generated ${sent}${target} login events (${Math.round((sent * 1000) / Math.max(1, ms))}/s)`)
        },
      })
      const invalid = result.sent === 0 ? 0 : Object.entries(result.byKind).filter(([k]) => k !== 'valid').reduce((n, [, v]) => n + v, 0)
      const summary = `generated ${result.sent} login events to ${settings.TOPIC_LOGINS} in ${(result.elapsedMs / 1000).toFixed(1)} s (seed ${seed}, ${invalid} invalid or stale)`
      if (process.stderr.isTTY) line.done(summary)
      else log.info({ byKind: result.byKind }, summary)
    })

  logins
    .command('process')
    .description('validate, filter and pseudonymise login events; publish outputs, errors, summary and metrics')
    .option('--exactly-once', 'outputs and consumer offsets in one Kafka transaction (readers use read_committed)')
    .option('--group <id>', 'consumer group id; processes with the same group share the partitions', 'kpipe-logins')
    .addOption(new Option('--from <where>', 'where a group without committed offsets starts').choices(['earliest', 'latest']).default('earliest'))
    .option('--instance-id <id>', 'names this process in summaries and metrics; keep it stable across restarts with --exactly-once (default: host-pid)')
    .option('--metrics-port <port>', 'serve /metrics, /healthz and /readyz on this port (0: any free port, logged at start)', intFlag('metrics-port', 0, 65535))
    .option('--batch-size <n>', 'most records handled per batch; fewer hold less in memory and handle fewer per second (docs/logins.md)', intFlag('batch-size', 1, 100_000), 5000)
    .action(async (options: { exactlyOnce?: boolean; group: string; from: 'earliest' | 'latest'; instanceId?: string; metricsPort?: number; batchSize: number }, command: Command) => {
      const { settings, log } = commandContext(command)
      const { MISSING_HASH_KEY, runProcessor } = await import('../../logins/process/run-processor.ts')
      if (!settings.KPIPE_HASH_KEY) throw new UserError(MISSING_HASH_KEY)
      if (options.instanceId !== undefined && !/^[A-Za-z0-9._-]{1,100}$/.test(options.instanceId)) {
        throw new UserError(`invalid value for --instance-id: ${JSON.stringify(options.instanceId)}: expected letters, digits, ".", "_" or "-"`)
      }
      const stop = new AbortController()
      void untilSignal((signal) => {
        log.info(`${signal}: finishing the batch in flight, then stopping`)
        stop.abort()
      })
      await runProcessor({
        settings, log, signal: stop.signal,
        groupId: options.group,
        from: options.from,
        exactlyOnce: options.exactlyOnce === true,
        instanceId: options.instanceId,
        metricsPort: options.metricsPort,
        maxBatchSize: options.batchSize,
      })
    })
  logins.addCommand(replayCommand())
  logins.addCommand(loginsSinkCommand())
  return logins
}

function ratioFlag(value: string): number {
  const n = Number(value)
  if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new UserError(`invalid value for --invalid-ratio: ${JSON.stringify(value)}: expected a number from 0 to 1`)
  return n
}
