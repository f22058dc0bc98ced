import { Command, CommanderError } from 'commander'
import { SetupError, UserError } from '../shell/errors.ts'
import { currentConnection } from '../shell/kafka/connection.ts'
import { registerCommands } from './commands/index.ts'

/** The CLI for `argv`: only the command it runs is loaded in full (src/cli/commands/index.ts). */
export async function buildProgram(argv: string[]): Promise<Command> {
  const program = new Command('kpipe')
    .description('Real-time data pipelines on Apache Kafka: host metrics → PostgreSQL → live dashboard, and user-login stream processing.')
    .version(process.env.npm_package_version ?? '0.1.0', '-V, --version')
    .option('--brokers <list>', 'Kafka bootstrap brokers, comma-separated (KAFKA_BROKERS)')
    .option('--data-dir <dir>', 'where local state lives (KPIPE_DATA_DIR, default .kpipe)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (LOG_LEVEL)')
    .showHelpAfterError('(run kpipe --help for usage)')
    .addHelpText('after', '\nSettings also come from environment variables; see the README for the full list.')
  await registerCommands(program, argv)
  for (const command of allCommands(program)) command.exitOverride()
  return program
}

function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)]
}

/** Runs the CLI; returns the exit code. Known errors become one line, never a stack trace. */
export async function main(argv: string[]): Promise<number> {
  let program: Command | undefined
  try {
    program = await buildProgram(argv)
    await program.parseAsync(argv, { from: 'user' })
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (error) {
    // loaded here, not at start-up: pino is not needed to print help
    const { errorLine, redactSecrets, stacksWanted } = await import('../shell/log.ts')
    if (error instanceof CommanderError) {
      // help and version end here too, with exit code 0
      return error.exitCode === 0 ? 0 : 2
    }
    if (error instanceof UserError) {
      process.stderr.write(`kpipe: ${redactSecrets(error.message)}\n`)
      return 2
    }
    // refused credentials or certificates, an unreachable broker, a missing topic: one line and what to check
    const setup = error instanceof SetupError ? error : (await import('../shell/kafka/connection-errors.ts')).kafkaCommandError(error, currentConnection())
    if (setup) {
      process.stderr.write(`kpipe: ${redactSecrets(setup.message)}\n`)
      if (setup.hint) process.stderr.write(`  → ${redactSecrets(setup.hint)}\n`)
      return 1
    }
    // one line; the stack is for whoever debugs it
    const level = (program?.opts() as { logLevel?: string } | undefined)?.logLevel ?? process.env.LOG_LEVEL
    if (stacksWanted(level) && error instanceof Error && error.stack) process.stderr.write(`${redactSecrets(error.stack)}\n`)
    process.stderr.write(`kpipe: unexpected error: ${redactSecrets(errorLine(error))}${stacksWanted(level) ? '' : ' (LOG_LEVEL=debug shows where)'}\n`)
    return 1
  }
}
