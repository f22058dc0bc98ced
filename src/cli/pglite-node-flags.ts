import { invokedCommand } from './commands/index.ts'

/**
 * The V8 flags of a process that runs embedded PGlite (docs/decisions.md, "Memory: PGlite's
 * processes start with --liftoff-only"): no optimising compiler for WebAssembly, whose
 * compilation of one PostgreSQL function takes ~600 MB for a second or two on Node 24, and a
 * 16 MB young generation. V8 takes them only when it starts (NODE_OPTIONS refuses the first).
 */
export const PGLITE_NODE_FLAGS: readonly string[] = ['--liftoff-only', '--max-semi-space-size=16']

/** The commands that open PGlite when DATABASE_URL is unset ("metrics sink": a command and its subcommand). */
const PGLITE_COMMANDS = new Set(['up', 'dashboard', 'metrics sink', 'logins sink'])

/**
 * The flags to start this process over with (bin/kpipe.js, through process.execve: same pid and
 * streams) when `argv` runs a command that opens PGlite and the process lacks them; otherwise
 * undefined. Never twice: a process started over has them in its execArgv.
 */
export function pgliteRestartFlags(argv: string[], env: NodeJS.ProcessEnv, execArgv: readonly string[]): string[] | undefined {
  if (env.DATABASE_URL) return undefined
  const command = invokedCommand(argv)
  if (command === undefined) return undefined
  const subcommand = argv.slice(argv.indexOf(command) + 1).find((arg) => !arg.startsWith('-'))
  if (!PGLITE_COMMANDS.has(command) && !PGLITE_COMMANDS.has(`${command} ${subcommand}`)) return undefined
  const missing = PGLITE_NODE_FLAGS.filter((flag) => !execArgv.includes(flag))
  return missing.length > 0 ? missing : undefined
}
