import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { stripVTControlCharacters } from 'node:util'
import { expect, test } from 'vitest'
import { createLogger, errorLine, registerSecrets } from './log.ts'

/** A logger whose lines (the tee beside stderr) are collected, parsed. */
function capture(level: string) {
  const lines: Record<string, unknown>[] = []
  const log = createLogger(level, 'kpipe-test', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) })
  return { log, lines }
}

test('an error logged after secrets are registered keeps its message and cause, and loses the secret', () => {
  registerSecrets(['s3cret-"quoted"-value', 'plain-secret-42'])
  const { log, lines } = capture('info')
  const cause = new Error('connect ECONNREFUSED 127.0.0.1:9092 (password plain-secret-42)')
  const error = new Error('Kafka unavailable with key s3cret-"quoted"-value', { cause })
  log.warn({ err: error, attempt: 3 }, 'processor: Kafka unavailable; retrying in 1.0 s')
  log.error(error, 'failed')
  expect(lines).toHaveLength(2)
  const text = lines.map((l) => JSON.stringify(l)).join('\n')
  expect(text).not.toContain('plain-secret-42')
  expect(text).not.toContain('s3cret')
  const err = lines[0]!.err as { type: string; message: string; stack?: string }
  expect(err.type).toBe('Error')
  expect(err.message).toBe('Kafka unavailable with key <redacted>: connect ECONNREFUSED 127.0.0.1:9092 (password <redacted>)')
  // one line at info: no stack
  expect(err.stack).toBeUndefined()
  expect(lines[0]!.attempt).toBe(3)
  expect((lines[1]!.err as { message: string }).message).toContain('connect ECONNREFUSED')
})

test('with LOG_LEVEL=debug the error carries its stack, still without the secret', () => {
  registerSecrets(['plain-secret-42'])
  const { log, lines } = capture('debug')
  log.warn({ err: new Error('refused for plain-secret-42') }, 'retrying')
  const err = lines[0]!.err as { message: string; stack: string }
  expect(err.message).toBe('refused for <redacted>')
  expect(err.stack).toContain('log.test.ts')
  expect(err.stack).not.toContain('plain-secret-42')
})

test('errorLine: the message and its causes, AggregateErrors by their first error, no repeats', () => {
  const inner = new Error('connect ECONNREFUSED 127.0.0.1:9092')
  expect(errorLine(new AggregateError([inner], 'Cannot connect to any broker'))).toBe('Cannot connect to any broker: connect ECONNREFUSED 127.0.0.1:9092')
  expect(errorLine(new Error('outer: connect ECONNREFUSED 127.0.0.1:9092', { cause: inner }))).toBe('outer: connect ECONNREFUSED 127.0.0.1:9092')
  expect(errorLine('plain text')).toBe('plain text')
})

test('on a terminal an entry is one line, the error message appended (the built logger, under a pseudo-terminal)', () => {
  const logModule = fileURLToPath(new URL('../../dist/shell/log.js', import.meta.url))
  const program = [
    `const { createLogger, registerSecrets } = await import(${JSON.stringify(logModule)})`,
    `registerSecrets(['plain-secret-42'])`,
    `createLogger('info').warn({ err: new Error('refused for plain-secret-42', { cause: new Error('connect ECONNREFUSED 127.0.0.1:9092') }) }, 'Kafka unavailable; retrying in 0.2 s')`,
  ].join('; ')
  // `script` gives the child a terminal for stderr, where the logger pretty-prints
  const result = spawnSync('script', ['-qec', `${process.execPath} --input-type=module -e ${JSON.stringify(program)}`, '/dev/null'], { encoding: 'utf8', timeout: 30_000 })
  expect(result.status, result.stdout + result.stderr).toBe(0)
  const lines = stripVTControlCharacters(result.stdout).trim().split(/\r?\n/)
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(/WARN.*Kafka unavailable; retrying in 0\.2 s \(refused for <redacted>: connect ECONNREFUSED 127\.0\.0\.1:9092\)$/)
})
