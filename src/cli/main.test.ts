import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { exitOf, runKpipe, spawnKpipe } from '../../test/support/cli.ts'

test('an unexpected failure is one line with its cause; the stack only with LOG_LEVEL=debug', () => {
  // a data dir below a plain file: no error kpipe explains, the operating system's own
  const dir = mkdtempSync(join(tmpdir(), 'kpipe-main-'))
  try {
    const file = join(dir, 'a-file')
    writeFileSync(file, '')
    const env = { KPIPE_DATA_DIR: join(file, 'data') }
    const plain = runKpipe(['kafka', 'start'], { ...env, LOG_LEVEL: 'info' })
    expect(plain.code).toBe(1)
    expect(plain.stderr.trimEnd().split('\n'), plain.stderr).toHaveLength(1)
    expect(plain.stderr).toMatch(/^kpipe: unexpected error: .*ENOTDIR.*LOG_LEVEL=debug/)
    expect(plain.stderr).not.toMatch(/\n\s+at /)

    const debug = runKpipe(['kafka', 'start'], { ...env, LOG_LEVEL: 'debug' })
    expect(debug.code).toBe(1)
    expect(debug.stderr).toMatch(/\n\s+at /)
    expect(debug.stderr).toMatch(/kpipe: unexpected error: .*ENOTDIR/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a reader that stops reading (kpipe … | head) ends kpipe quietly with 0, not an EPIPE stack', async () => {
  const child = spawnKpipe(['--help'])
  // the read end closed before kpipe has written anything: its first write meets EPIPE
  child.stdout!.destroy()
  const exit = await exitOf(child)
  expect(child.output()).not.toMatch(/EPIPE|\n\s+at /)
  expect(exit).toEqual({ code: 0, signal: null })
})
