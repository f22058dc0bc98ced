import { resolve } from 'node:path'
import { Command, Option } from 'commander'
import { commandContext, intFlag, untilSignal } from '../context.ts'
import { UserError } from '../../shell/errors.ts'
import { statusLine } from '../progress.ts'
import { runBench, type BenchPart } from '../../bench/run-bench.ts'
import { benchTable } from '../../bench/report.ts'

export function benchCommand(): Command {
  return new Command('bench')
    .description('measure the processor, end-to-end latency, the sink and the collector against the broker\'s own ceiling')
    .option('--messages <n>', 'login events preloaded for the processor and for the ceiling', intFlag('messages', 1000), undefined)
    .option('--repeat <n>', 'runs of each measurement (the processor\'s two modes in alternation, a run of each per round); each figure is their median', intFlag('repeat', 1, 100))
    .option('--quick', 'a smoke test: small volumes, one run (figures not comparable with a full run)')
    .option('--json', 'print one JSON object with the figures instead of the table')
    .option('--cpu-prof <dir>', 'write a CPU profile of every processor and sink run (node --cpu-prof) to this directory')
    .addOption(new Option('--only <part>', 'measure one part only: processor = the broker ceiling and the processor in both modes (no latency, sinks or collector; no PostgreSQL); sink = the metrics sink into PostgreSQL and into PGlite (no login events, no ceiling); latency = the end-to-end latency (no preload, no ceiling, no PostgreSQL)').choices(['processor', 'sink', 'latency']))
    .addHelpText('after', '\nStarts a temporary Kafka broker unless KAFKA_BROKERS (or --brokers) is set, and an ephemeral PostgreSQL\n' +
      'unless DATABASE_URL is set. See docs/benchmarks.md for the method and the figures of this project\'s machine.')
    .action(async (options: { messages?: number; repeat?: number; quick?: boolean; json?: boolean; cpuProf?: string; only?: BenchPart }, command: Command) => {
      const without = { sink: 'it preloads samples of its own', latency: 'it sends events at fixed rates for a fixed time' }
      if ((options.only === 'sink' || options.only === 'latency') && options.messages !== undefined) {
        throw new UserError(`--messages sets the login events of the processor and the ceiling; --only ${options.only} measures neither (${without[options.only]}): leave one of them out`)
      }
      const { settings } = commandContext(command)
      const quick = options.quick === true
      const line = statusLine()
      const globals = command.optsWithGlobals() as { brokers?: string }
      const stop = new AbortController()
      void untilSignal((signal) => {
        line.done(`bench: ${signal}, stopping the parts and removing the temporary broker and database`)
        stop.abort()
      })
      const result = await runBench({
        settings,
        quick,
        messages: options.messages ?? (quick ? 5000 : 1_000_000),
        repeat: options.repeat ?? (quick ? 1 : 3),
        ownBroker: process.env.KAFKA_BROKERS === undefined && globals.brokers === undefined,
        ...(options.cpuProf ? { cpuProfileDir: resolve(options.cpuProf) } : {}),
        ...(options.only ? { only: options.only } : {}),
        status: (text) => line.update(text),
        say: (text) => line.done(`bench: ${text}`),
        signal: stop.signal,
        onInterrupted: () => process.exit(130),
      })
      // a failed part: what was measured before it is printed all the same, and the exit code says it failed
      line.done(result.failed ? `bench: ${result.failed.part} failed: ${result.failed.error}` : 'bench: done')
      process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : benchTable(result))
      if (result.failed) process.exitCode = 1
    })
}
