import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { exitOf, spawnKpipe, waitFor } from '../../test/support/cli.ts'
import { PGLITE_NODE_FLAGS, pgliteRestartFlags } from './pglite-node-flags.ts'

test('the commands that open PGlite, and only those, start over with its V8 flags; never twice', () => {
  const flags = (args: string, env: NodeJS.ProcessEnv = {}, execArgv: string[] = []) => pgliteRestartFlags(args.split(' '), env, execArgv)
  for (const args of ['metrics sink', 'metrics sink --group g', '--data-dir d metrics sink', 'logins sink', 'up', 'dashboard --port 0']) {
    expect(flags(args), args).toEqual(PGLITE_NODE_FLAGS)
  }
  for (const args of ['metrics collect', 'logins process', 'logins generate', 'bench', 'tail performance', 'kafka start', '--help']) {
    expect(flags(args), args).toBeUndefined()
  }
  expect(flags('metrics sink', { DATABASE_URL: 'postgres://db/kpipe' })).toBeUndefined()
  expect(flags('metrics sink', { DATABASE_URL: '' })).toEqual(PGLITE_NODE_FLAGS) // empty counts as unset, as in the settings
  expect(flags('metrics sink', {}, [...PGLITE_NODE_FLAGS, '--cpu-prof'])).toBeUndefined()
  expect(flags('metrics sink', {}, ['--liftoff-only'])).toEqual(['--max-semi-space-size=16'])
})

/** the V8 flags a running process was started with, as the kernel has its command line */
const flagsOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg.startsWith('--'))

/** waits for a line of the child's log; fails with its output */
async function untilLogged(child: ReturnType<typeof spawnKpipe>, line: RegExp, what: string): Promise<void> {
  await waitFor(() => line.test(child.output()), 45_000, what).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}; its output:\n${child.output().slice(-2000)}`)
  })
}

test.runIf(process.platform === 'linux')('kpipe metrics sink on PGlite runs with the flags, in the pid it was started as; on PostgreSQL without', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kpipe-pglite-flags-'))
  // no broker and no server on these ports: each sink opens its database, then waits, retrying
  const env = { KAFKA_BROKERS: '127.0.0.1:1', KPIPE_DATA_DIR: dir, LOG_LEVEL: 'info' }
  const pglite = spawnKpipe(['metrics', 'sink'], { ...env, DATABASE_URL: undefined })
  const postgres = spawnKpipe(['metrics', 'sink'], { ...env, DATABASE_URL: 'postgres://kpipe@127.0.0.1:1/kpipe' })
  try {
    // the sink opens its database before it waits for Kafka
    await untilLogged(pglite, /"msg":"Kafka at 127\.0\.0\.1:1 unavailable/, 'the PGlite sink to wait for Kafka')
    expect(flagsOf(pglite.pid!)).toEqual(expect.arrayContaining([...PGLITE_NODE_FLAGS]))
    expect(pglite.output()).toContain(`"pid":${pglite.pid},`)
    await untilLogged(postgres, /"msg":"database .* unavailable/, 'the PostgreSQL sink to wait for its database')
    expect(flagsOf(postgres.pid!)).not.toContain('--liftoff-only')
  } finally {
    for (const child of [pglite, postgres]) child.kill('SIGKILL')
    await Promise.all([exitOf(pglite), exitOf(postgres)])
    rmSync(dir, { recursive: true, force: true })
  }
}, 120_000)
