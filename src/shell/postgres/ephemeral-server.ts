import { execFileSync, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
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
  if (userInfo().uid === 0) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()))
  const { run, start, stop } = postgresControl(dir, port, bin)
  run('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync'])
  start()
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
    if (result.status !== 0) throw new Error(`${command} failed (exit ${result.status}): ${result.stderr || result.stdout}`)
  }
  const data = join(dir, 'data')
  return {
    run,
    start: () =>
      run('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`, 'start']),
    stop: () => run('pg_ctl', ['-D', data, '-w', '-t', '60', '-m', 'fast', 'stop']),
  }
}

export function removePostgres(server: PostgresServer): void {
  try {
    server.stop()
  } catch {
    // already stopped
  }
  rmSync(server.dir, { recursive: true, force: true })
}
