import { invokedCommand } from './commands/index.ts'

/**
 * The V8 flags of a process that runs embedded PGlite (docs/decisions.md, "Memory: PGlite's
 * processes start with --liftoff-only"): no optimising compiler for WebAssembly, whose
 * compilation of one PostgreSQL function takes ~600 MB for a second or two on Node 24, and a
 * 16 MB young generation. V8 takes them only when it starts (NODE_OPTIONS refuses the first).
 */
export const PGLITE_NODE_FLAGS: readonly string[] = ['--liftoff-only', '--max-semi-space-size=16']

/**
 * The V8 flags of the login processor (docs/decisions.md, "Memory: the processor's young
 * generation is 8 MB", "Memory: the processor's old space grows threefold" and "… two and a half
 * times"): semi-spaces of 8 MB instead of the 64 MB Node 24 gives a process on a machine of 16 GB
 * or more, and an old space allowed to grow to two and a half times what a mark-compact leaves
 * instead of V8's four; ~165 MB less at its peak together, for ~0.3 µs per message more (V8's
 * helper threads). The rules thread takes them too.
 */
export const PROCESSOR_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--heap-growing-percent=150']

/** The commands that open PGlite when DATABASE_URL is unset ("metrics sink": a command and its subcommand). */
const PGLITE_COMMANDS = new Set(['up', 'dashboard', 'metrics sink', 'logins sink'])

/**
 * The flags to start this process over with (bin/kpipe.js, through process.execve: same pid and
 * streams) when `argv` runs a command that has flags of its own (PGlite's, the processor's) and
 * the process lacks them; otherwise undefined. Never twice: a process started over has them in
 * its execArgv. A flag the user sets (on the command line or in NODE_OPTIONS, to any value) is left
 * to the user: flags on the command line win over NODE_OPTIONS, so adding ours would override theirs.
 */
export function restartFlags(argv: string[], env: NodeJS.ProcessEnv, execArgv: readonly string[]): string[] | undefined {
  const command = invokedCommand(argv)
  if (command === undefined) return undefined
  const subcommand = argv.slice(argv.indexOf(command) + 1).find((arg) => !arg.startsWith('-'))
  const invoked = `${command} ${subcommand}`
  const wanted = !env.DATABASE_URL && (PGLITE_COMMANDS.has(command) || PGLITE_COMMANDS.has(invoked)) ? PGLITE_NODE_FLAGS
    : invoked === 'logins process' ? PROCESSOR_NODE_FLAGS
      : undefined
  if (wanted === undefined) return undefined
  const given = new Set([...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].map(flagName))
  const missing = wanted.filter((flag) => !given.has(flagName(flag)))
  return missing.length > 0 ? missing : undefined
}

/** A V8 or Node flag's name, whatever its value or spelling: `--max_semi_space_size=4` and `--no-liftoff-only` name `max-semi-space-size` and `liftoff-only`. */
function flagName(flag: string): string {
  return flag.replace(/=.*$/s, '').replace(/^--(no-)?/, '').replaceAll('_', '-')
}
