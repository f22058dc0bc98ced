import { execFileSync, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { SetupError } from '../errors.ts'

const NO_POSTGRES_HINT = 'install them (Debian: apt-get install postgresql), or set DATABASE_URL to a PostgreSQL server'

/** initdb and pg_ctl from PATH, else from the newest /usr/lib/postgresql/<version>/bin. */
export function findPostgresBin(): string | undefined {
  const onPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim()
  if (onPath) return onPath.replace(/\/initdb$/, '')
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
  return versions[0] ? join(root, versions[0], 'bin') : undefined
}

export interface PostgresServer {
  url: string
  port: number
  dir: string
  /** stop the server; `fast` mode, as an operator would */
  stop(): void
  /** start it again on the same port and data (for outage tests) */
  start(): void
}

/**
 * An ephemeral PostgreSQL server: a fresh cluster in a temp dir, trust auth, on 127.0.0.1, tuned
 * for throwaway data (no fsync). The tests and `kpipe bench` use it; never for data to keep.
 * As root it runs as the `postgres` user (PostgreSQL refuses to run as root).
 */
export function startPostgres(port: number): PostgresServer {
  const bin = findPostgresBin()
  if (!bin) throw new SetupError('PostgreSQL server binaries (initdb, pg_ctl) not found', NO_POSTGRES_HINT)
  const dir = mkdtempSync(join(tmpdir(), 'kpipe-pg-'))
  const { run, start, stop } = postgresControl(dir, port, bin)
  let initialised = false
  try {
    if (userInfo().uid === 0) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()))
    run('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync'])
    initialised = true
    start()
  } catch (error) {
    const reported = error instanceof PostgresProgramFailed ? ephemeralStartError(error, dir) : error
    // a server that did not start in time may still be starting: stopped before its directory goes
    if (initialised) {
      try {
        stop()
      } catch {
        // not running
      }
    }
    rmSync(dir, { recursive: true, force: true })
    throw reported
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    start,
    stop,
  }
}

/**
 * pg_ctl for the server whose cluster lives in `<dir>/data`, e.g. the shared test server
 * (`inject('postgresDir')`, `inject('postgresPort')`): outage tests stop and start it with this.
 * As root, PostgreSQL's programs run as the `postgres` user.
 */
export function postgresControl(dir: string, port: number, bin = findPostgresBin()) {
  if (!bin) throw new SetupError('PostgreSQL server binaries (initdb, pg_ctl) not found', NO_POSTGRES_HINT)
  const asRoot = userInfo().uid === 0
  const run = (command: string, args: string[]) => {
    const full = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, command), ...args]] as const : [join(bin, command), args] as const
    const result = spawnSync(full[0], [...full[1]], { encoding: 'utf8', cwd: dir })
    if (result.status !== 0) throw new PostgresProgramFailed(command, result.status, result.stderr || result.stdout || result.error?.message || '')
  }
  const data = join(dir, 'data')
  return {
    run,
    start: () =>
      run('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`, 'start']),
    stop: () => run('pg_ctl', ['-D', data, '-w', '-t', '60', '-m', 'fast', 'stop']),
  }
}

/** A PostgreSQL program (initdb, pg_ctl) that exited with an error; `output` is what it said. */
export class PostgresProgramFailed extends Error {
  override name = 'PostgresProgramFailed'
  constructor(
    readonly program: string,
    readonly status: number | null,
    readonly output: string,
  ) {
    super(`${program} failed (exit ${status}): ${output}`)
  }
}

/**
 * A server that could not be made or started is a broken prerequisite, said in one line: the
 * program's last words, and what to do. The usual cause as root: PostgreSQL runs as `postgres`,
 * which cannot enter a TMPDIR only root may enter.
 */
function ephemeralStartError(failure: PostgresProgramFailed, dir: string): SetupError {
  // pg_ctl only says "could not start server": the server's reason is in its log
  let said = failure.output
  try {
    if (failure.program === 'pg_ctl') said += `\n${readFileSync(join(dir, 'server.log'), 'utf8')}`
  } catch {
    // no log written
  }
  const lines = said.split('\n').map((l) => l.trim().replace(/^(initdb|pg_ctl): /, '').replace(/^([\d-]+ [\d:.]+ \w+ \[\d+\] )?(error|LOG|FATAL|ERROR):\s+/, '')).filter(Boolean)
  const reason = lines.findLast((l) => /denied|in use|too long/i.test(l)) ?? lines.findLast((l) => /could not|fatal|error/i.test(l)) ?? lines.at(-1) ?? `exit ${failure.status}`
  const denied = /permission denied/i.test(said)
  const hint = /socket path .* too long/i.test(said)
    ? `set TMPDIR to a shorter path (the server's socket is made in a directory under ${tmpdir()}), or set DATABASE_URL to a PostgreSQL server`
    : denied && userInfo().uid === 0
    ? `set TMPDIR to a directory the postgres user can enter (kpipe runs PostgreSQL as postgres when run as root; ${tmpdir()} is not one), or set DATABASE_URL to a PostgreSQL server`
    : denied
      ? `set TMPDIR to a directory this user can write to (${tmpdir()} is not one), or set DATABASE_URL to a PostgreSQL server`
      : 'set DATABASE_URL to a PostgreSQL server instead of the ephemeral one'
  return new SetupError(`the ephemeral PostgreSQL could not be started: ${failure.program} failed: ${reason}`, hint)
}

export function removePostgres(server: PostgresServer): void {
  try {
    server.stop()
  } catch {
    // already stopped
  }
  rmSync(server.dir, { recursive: true, force: true })
}
