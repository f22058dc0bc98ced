import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { exitOf, spawnKpipe, waitFor } from '../../test/support/cli.ts'
import { PGLITE_NODE_FLAGS, PROCESSOR_NODE_FLAGS, restartFlags } from './node-flags.ts'

const flags = (args: string, env: NodeJS.ProcessEnv = {}, execArgv: string[] = []) => restartFlags(args.split(' '), env, execArgv)

test('the commands that open PGlite, and only those, start over with its V8 flags; never twice', () => {
  for (const args of ['metrics sink', 'metrics sink --group g', '--data-dir d metrics sink', 'logins sink', 'up', 'dashboard --port 0']) {
    expect(flags(args), args).toEqual(PGLITE_NODE_FLAGS)
  }
  for (const args of ['metrics collect', 'logins generate', 'bench', 'tail performance', 'kafka start', '--help']) {
    expect(flags(args), args).toBeUndefined()
  }
  expect(flags('metrics sink', { DATABASE_URL: 'postgres://db/kpipe' })).toBeUndefined()
  expect(flags('metrics sink', { DATABASE_URL: '' })).toEqual(PGLITE_NODE_FLAGS) // empty counts as unset, as in the settings
  expect(flags('metrics sink', {}, [...PGLITE_NODE_FLAGS, '--cpu-prof'])).toBeUndefined()
  expect(flags('metrics sink', {}, ['--liftoff-only'])).toEqual(['--max-semi-space-size=16'])
})

test('the login processor starts over with its young generation, whatever the database', () => {
  for (const args of ['logins process', 'logins process --exactly-once', '--brokers b:9092 logins process --group g']) {
    expect(flags(args), args).toEqual(PROCESSOR_NODE_FLAGS)
    expect(flags(args, { DATABASE_URL: 'postgres://db/kpipe' }), args).toEqual(PROCESSOR_NODE_FLAGS)
  }
  expect(flags('logins process', {}, [...PROCESSOR_NODE_FLAGS])).toBeUndefined()
})

test("a flag the user sets, to any value, on the command line or in NODE_OPTIONS, is the user's", () => {
  // the command line wins over NODE_OPTIONS: a flag of ours added there would override theirs
  expect(flags('logins process', {}, ['--max-semi-space-size=32'])).toEqual(['--heap-growing-percent=150'])
  expect(flags('logins process', {}, ['--heap_growing_percent=50', '--max-semi-space-size=32'])).toBeUndefined()
  expect(flags('logins process', { NODE_OPTIONS: '--max-old-space-size=512  --max_semi_space_size=2' })).toEqual(['--heap-growing-percent=150'])
  expect(flags('logins process', { NODE_OPTIONS: '--max-old-space-size=512' })).toEqual(PROCESSOR_NODE_FLAGS)
  expect(flags('metrics sink', { NODE_OPTIONS: '--max-semi-space-size=64' })).toEqual(['--liftoff-only'])
  expect(flags('metrics sink', {}, ['--no-liftoff-only'])).toEqual(['--max-semi-space-size=16'])
})

/** the V8 flags a running process was started with, as the kernel has its command line */
const flagsOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg.startsWith('--'))

/** waits for a line of the child's log; fails with its output */
async function untilLogged(child: ReturnType<typeof spawnKpipe>, line: RegExp, what: string): Promise<void> {
  await waitFor(() => line.test(child.output()), 45_000, what).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}; its output:\n${child.output().slice(-2000)}`)
  })
}

test.runIf(process.platform === 'linux')('kpipe metrics sink on PGlite runs with the flags, in the pid it was started as; on PostgreSQL without; the processor with its own', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kpipe-pglite-flags-'))
  // no broker and no server on these ports: each sink opens its database, then waits, retrying
  const env = { KAFKA_BROKERS: '127.0.0.1:1', KPIPE_DATA_DIR: dir, LOG_LEVEL: 'info' }
  const pglite = spawnKpipe(['metrics', 'sink'], { ...env, DATABASE_URL: undefined })
  const postgres = spawnKpipe(['metrics', 'sink'], { ...env, DATABASE_URL: 'postgres://kpipe@127.0.0.1:1/kpipe' })
  const processor = spawnKpipe(['logins', 'process'], { ...env, KPIPE_HASH_KEY: 'a-test-key-of-enough-length', NODE_OPTIONS: undefined })
  try {
    await untilLogged(processor, /"msg":"create topics: Kafka unavailable/, 'the processor to wait for Kafka')
    expect(flagsOf(processor.pid!)).toEqual(expect.arrayContaining([...PROCESSOR_NODE_FLAGS]))
    expect(processor.output()).toContain(`"pid":${processor.pid},`)
    // the sink opens its database before it waits for Kafka
    await untilLogged(pglite, /"msg":"Kafka at 127\.0\.0\.1:1 unavailable/, 'the PGlite sink to wait for Kafka')
    expect(flagsOf(pglite.pid!)).toEqual(expect.arrayContaining([...PGLITE_NODE_FLAGS]))
    expect(pglite.output()).toContain(`"pid":${pglite.pid},`)
    await untilLogged(postgres, /"msg":"database .* unavailable/, 'the PostgreSQL sink to wait for its database')
    expect(flagsOf(postgres.pid!)).not.toContain('--liftoff-only')
  } finally {
    for (const child of [pglite, postgres, processor]) child.kill('SIGKILL')
    await Promise.all([exitOf(pglite), exitOf(postgres), exitOf(processor)])
    rmSync(dir, { recursive: true, force: true })
  }
}, 120_000)
