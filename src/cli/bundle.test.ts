import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomUUID } from 'node:crypto'
import { expect, inject, test } from 'vitest'
import { exitOf, runKpipe, spawnKpipe, waitFor } from '../../test/support/cli.ts'
import { endOffsetSum, generateLogins, loginEnv, settingsOf } from '../logins/logins.fixture.ts'
import { CORRECTION_MARK, ENCODER_MARK, LEAN_MESSAGES_MARK, LINEAGE_MARK, STABLE_OFFSETS_MARK, TRANSACTION_PARTITIONS_MARK } from '../shell/kafka/client-correction.ts'

const BUNDLE = fileURLToPath(new URL('../../dist/bundle', import.meta.url))

/** A load hook that writes, at exit, every module URL the process loaded and Node's own modules it loaded. */
const MODULES_HOOK = `data:text/javascript,${encodeURIComponent(`import { registerHooks } from 'node:module'
import { isMainThread } from 'node:worker_threads'
const urls = []
registerHooks({ load(url, context, next) { urls.push(url); return next(url, context) } })
// the hook runs in the rules thread too: only the main thread reports
if (isMainThread) process.on('exit', () => process.stderr.write('\\nMODULES ' + JSON.stringify({ urls, builtins: process.moduleLoadList }) + '\\n'))`)}`

type Loaded = { urls: string[]; builtins: string[] }

function loadedIn(stderr: string): Loaded {
  const line = stderr.split('\n').find((l) => l.startsWith('MODULES '))
  expect(line, stderr).toBeDefined()
  return JSON.parse(line!.slice('MODULES '.length)) as Loaded
}

/** Every module URL a command loads. */
function modulesLoadedBy(args: string[]): string[] {
  const result = runKpipe(args, {}, 60_000, ['--import', MODULES_HOOK])
  expect(result.code, result.stderr).toBe(0)
  return loadedIn(result.stderr).urls
}

/** None of `names` was loaded from node_modules. */
function expectNoneOf(urls: string[], names: readonly string[]): void {
  for (const name of names) expect(urls.filter((url) => url.includes(`/node_modules/${name}/`)), name).toEqual([])
}

/** What no processor or collector needs: the database drivers, PGlite, the terminal's log printer, the web server. */
const NOT_NEEDED = ['pg', 'pg-copy-streams', 'pino-pretty', '@electric-sql/pglite', 'fastify']

test('the CLI runs from its bundle: the Kafka client, zod and ajv are not loaded from node_modules', () => {
  const loaded = modulesLoadedBy(['logins', 'process', '--help'])
  const fromBundle = loaded.filter((url) => url.includes('/dist/bundle/'))
  expect(fromBundle.some((url) => url.endsWith('/dist/bundle/main.js'))).toBe(true)
  // the client's consumer, corrected, came from one of the bundle's chunks
  const texts = fromBundle.map((url) => readFileSync(fileURLToPath(url), 'utf8'))
  expect(texts.some((text) => text.includes(`/*! ${CORRECTION_MARK}`))).toBe(true)
  expectNoneOf(loaded, ['@platformatic/kafka', 'zod', 'ajv', 'mnemonist', 'avsc', 'commander'])
  // unbundled, the same command loads ~980 modules (docs/decisions.md, "The CLI runs from one bundle")
  expect(loaded.filter((url) => !url.startsWith('node:')).length).toBeLessThan(250)
})

test("the bundle carries kpipe's corrections of the Kafka client", () => {
  const chunks = readdirSync(BUNDLE).filter((file) => file.endsWith('.js'))
  const text = chunks.map((file) => readFileSync(join(BUNDLE, file), 'utf8')).join('\n')
  // as the corrections write them: the constants alone are in the bundle too (read-committed.ts)
  expect(text).toContain(`/*! ${CORRECTION_MARK}`)
  expect(text).toContain(`/*! ${ENCODER_MARK}`)
  expect(text).toContain(`/*! ${STABLE_OFFSETS_MARK}`)
  expect(text).toContain(`/*! ${LEAN_MESSAGES_MARK}`)
  expect(text).toContain(`/*! ${LINEAGE_MARK}`)
  expect(text).toContain(`/*! ${TRANSACTION_PARTITIONS_MARK}`)
  // the client's own filter and its unstable committed offsets, the bugs, are not in it
  expect(text).not.toContain('abortedRanges.set(aborted.producerId, [aborted.firstOffset, -1n]);')
  expect(text).not.toMatch(/topics\s*\}\s*\], false, \(error, response\) =>/)
  // nor its message's commit bound for every record
  expect(text).not.toMatch(/const commit = autocommit \? noopCallback : this\.#commit\.bind/)
  // and its producer tells a lineage by its brand, which the bundle keeps in one module
  expect(text.match(/Symbol\.for\(["']kpipe\.lineage["']\)/g)).toHaveLength(1)
})

/**
 * The modules a long-running command loaded: it runs with the hook until `done` says its work is
 * under way, then stops on SIGTERM (exit 0).
 */
async function loadedWhileRunning(args: string[], env: Record<string, string>, done: () => Promise<boolean>): Promise<Loaded> {
  const child = spawnKpipe(args, env, ['--import', MODULES_HOOK])
  try {
    await waitFor(async () => child.exitCode !== null || (await done()), 30_000, `${args.join(' ')} at work`).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; its output:\n${child.output().slice(-3000)}`)
    })
    expect(child.exitCode, child.output()).toBeNull()
    child.kill('SIGTERM')
    expect((await exitOf(child)).code, child.output()).toBe(0)
  } finally {
    child.kill('SIGKILL')
  }
  return loadedIn(child.output())
}

test("a processor that has handled records holds what it runs: no database driver, no terminal printer, not Node's HTTP client", async () => {
  // each module's source, records and code stay in the heap for the process's life, and the old space
  // grows to a multiple of what it holds (docs/decisions.md, "A command loads what it runs")
  const env = loginEnv({ LOG_LEVEL: 'warn' })
  const settings = await generateLogins(env, 2000)
  const outputs = [settings.TOPIC_PROCESSED, settings.TOPIC_CLEANED, settings.TOPIC_ERRORS]
  // --metrics-port: the processor serves /metrics too (node:http, taken without undici)
  const { urls, builtins } = await loadedWhileRunning(['logins', 'process', '--group', `g-${settings.TOPIC_LOGINS}`, '--metrics-port', '0'], env,
    async () => (await endOffsetSum(settings, outputs)) >= 2000)
  expect(urls.some((url) => url.includes('/dist/bundle/login-processor-')), urls.join('\n')).toBe(true)
  expectNoneOf(urls, NOT_NEEDED)
  expect(urls.filter((url) => /\/dist\/bundle\/(run-login-sink|sink|replay|run-replay|run-generator|bench)-/.test(url))).toEqual([])
  expect(builtins.filter((name) => name.includes('undici'))).toEqual([])
})

test('a collector at work holds no database driver', async () => {
  const env = { KAFKA_BROKERS: inject('kafkaBrokers'), TOPIC_PERFORMANCE: `performance-${randomUUID().slice(0, 8)}`, LOG_LEVEL: 'warn' }
  const settings = settingsOf(env)
  const { urls } = await loadedWhileRunning(['metrics', 'collect', '--interval', '100ms'], env,
    async () => (await endOffsetSum(settings, [settings.TOPIC_PERFORMANCE])) >= 3)
  expectNoneOf(urls, NOT_NEEDED)
})
