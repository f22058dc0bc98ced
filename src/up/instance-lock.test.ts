import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, test } from 'vitest'
import { claimInstance, upRecordFile, UpAlreadyRunningError } from './instance-lock.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kpipe-up-lock-'))
  dirs.push(dir)
  return dir
}

test('a live kpipe up of the data dir is named with its pid and dashboard', async () => {
  const dir = dataDir()
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' })
  try {
    writeFileSync(upRecordFile(dir), JSON.stringify({ pid: other.pid, url: 'http://127.0.0.1:8080/' }))
    let error: unknown
    try {
      claimInstance(dir)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(UpAlreadyRunningError)
    expect((error as Error).message).toBe(`kpipe up is already running (pid ${other.pid}), dashboard at http://127.0.0.1:8080/`)
    // the live owner's record is left as it was
    expect(JSON.parse(readFileSync(upRecordFile(dir), 'utf8'))).toEqual({ pid: other.pid, url: 'http://127.0.0.1:8080/' })
  } finally {
    other.kill('SIGKILL')
  }
})

test('the record of a run that was killed is taken over and handed back with its broker', async () => {
  const dir = dataDir()
  const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await new Promise((resolve) => dead.once('exit', resolve))
  writeFileSync(upRecordFile(dir), JSON.stringify({ pid: dead.pid, url: 'http://127.0.0.1:8080/', brokerPid: 4242 }))
  const lock = claimInstance(dir)
  expect(lock.previous).toEqual({ pid: dead.pid, url: 'http://127.0.0.1:8080/', brokerPid: 4242 })
  lock.update({ url: 'http://127.0.0.1:9000/' })
  expect(JSON.parse(readFileSync(upRecordFile(dir), 'utf8'))).toEqual({ pid: process.pid, url: 'http://127.0.0.1:9000/' })
  expect(() => claimInstance(dir)).not.toThrow() // the same process may claim again (a test, a restart in process)
  lock.release()
  expect(existsSync(upRecordFile(dir))).toBe(false)
})
