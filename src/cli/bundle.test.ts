import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'
import { KPIPE_BIN, childEnv } from '../../test/support/cli.ts'
import { CORRECTION_MARK, ENCODER_MARK, STABLE_OFFSETS_MARK } from '../shell/kafka/client-correction.ts'

const BUNDLE = fileURLToPath(new URL('../../dist/bundle', import.meta.url))

/** Every module URL a command loads (a load hook that writes them to stderr at exit). */
function modulesLoadedBy(args: string[]): string[] {
  const hook = `import { registerHooks } from 'node:module'
const urls = []
registerHooks({ load(url, context, next) { urls.push(url); return next(url, context) } })
process.on('exit', () => process.stderr.write('\\nMODULES ' + JSON.stringify(urls) + '\\n'))`
  const result = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, KPIPE_BIN, ...args], {
    encoding: 'utf8',
    env: childEnv({ LOG_LEVEL: 'warn' }),
    timeout: 60_000,
  })
  expect(result.status, result.stderr).toBe(0)
  const line = result.stderr.split('\n').find((l) => l.startsWith('MODULES '))
  expect(line, result.stderr).toBeDefined()
  return JSON.parse(line!.slice('MODULES '.length)) as string[]
}

test('the CLI runs from its bundle: the Kafka client, zod and ajv are not loaded from node_modules', () => {
  const loaded = modulesLoadedBy(['logins', 'process', '--help'])
  const fromBundle = loaded.filter((url) => url.includes('/dist/bundle/'))
  expect(fromBundle.some((url) => url.endsWith('/dist/bundle/main.js'))).toBe(true)
  // the client's consumer, corrected, came from one of the bundle's chunks
  const texts = fromBundle.map((url) => readFileSync(fileURLToPath(url), 'utf8'))
  expect(texts.some((text) => text.includes(`/*! ${CORRECTION_MARK}`))).toBe(true)
  for (const name of ['@platformatic/kafka', 'zod', 'ajv', 'mnemonist', 'avsc', 'commander']) {
    expect(loaded.filter((url) => url.includes(`/node_modules/${name}/`)), name).toEqual([])
  }
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
  // the client's own filter and its unstable committed offsets, the bugs, are not in it
  expect(text).not.toContain('abortedRanges.set(aborted.producerId, [aborted.firstOffset, -1n]);')
  expect(text).not.toMatch(/topics\s*\}\s*\], false, \(error, response\) =>/)
})
