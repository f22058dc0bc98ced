import type { Command } from 'commander'

/**
 * The commands of SPEC.md, in the order `kpipe --help` lists them. Each command's module is
 * imported only when that command runs (or its help is asked for): `kpipe --help` loads none,
 * `kpipe tail` loads tail's and what it uses — not the dashboard, the database drivers or the
 * bench. `summary` is the command's own description (a test keeps them equal).
 */
export const COMMANDS: { name: string; summary: string; load: () => Promise<Command> }[] = [
  {
    name: 'kafka',
    summary: 'the local Apache Kafka 4.1.2 broker (KRaft, one node, data under KPIPE_DATA_DIR/kafka)',
    load: async () => (await import('./kafka.ts')).kafkaCommand(),
  },
  {
    name: 'topics',
    summary: 'the Kafka topics of kpipe',
    load: async () => (await import('./topics.ts')).topicsCommand(),
  },
  {
    name: 'logins',
    summary: 'the user-login pipeline: generate and process',
    load: async () => (await import('./logins.ts')).loginsCommand(),
  },
  {
    name: 'tail',
    summary: 'pretty-print the records of a topic: keys, headers and JSON values (follows new records until Ctrl-C)',
    load: async () => (await import('./tail.ts')).tailCommand(),
  },
  {
    name: 'audit',
    summary: 'prove conservation: every user-login offset appears exactly once across processed-output, cleaned-data and processed-errors (exit 1 on a missing one)',
    load: async () => (await import('./audit.ts')).auditCommand(),
  },
  {
    name: 'up',
    summary: 'the whole stack on this machine: a local Kafka broker (unless KAFKA_BROKERS is set), embedded PGlite (unless DATABASE_URL is set), topics, login generator, processor, metrics collector, sink and dashboard; Ctrl-C stops everything',
    load: async () => (await import('./up.ts')).upCommand(),
  },
  {
    name: 'dashboard',
    summary: 'the live web dashboard: host metrics, the login pipeline and Kafka, with /metrics, /healthz and /readyz',
    load: async () => (await import('./dashboard.ts')).dashboardCommand(),
  },
  {
    name: 'metrics',
    summary: 'the host metrics pipeline: sample this host → performance topic → PostgreSQL',
    load: async () => (await import('./metrics.ts')).metricsCommand(),
  },
  {
    name: 'bench',
    summary: 'measure the processor, end-to-end latency, the sink and the collector against the broker\'s own ceiling',
    load: async () => (await import('./bench.ts')).benchCommand(),
  },
]

/** kpipe's options that take a value: what follows them is not the command's name. */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['--brokers', '--data-dir', '--log-level'])

/** The command `argv` runs (or asks help for: `kpipe help tail`), if any. */
export function invokedCommand(argv: string[]): string | undefined {
  let asksHelp = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) {
      i++
    } else if (arg === '--') {
      return argv[i + 1]
    } else if (!arg.startsWith('-')) {
      if (arg !== 'help' || asksHelp) return arg
      asksHelp = true
    }
  }
  return undefined
}

/**
 * Registers every command: the invoked one in full, the others as their name and summary (enough
 * for `kpipe --help` and for commander's "unknown command" suggestions).
 */
export async function registerCommands(program: Command, argv: string[]): Promise<void> {
  const invoked = invokedCommand(argv)
  for (const { name, summary, load } of COMMANDS) {
    if (name === invoked) program.addCommand(await load())
    else program.command(name).description(summary).allowUnknownOption().allowExcessArguments()
  }
}
