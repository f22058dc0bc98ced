import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DatabaseInUseError, lockPgliteDir, openPglite } from './database.ts'

describe('embedded PGlite serves one process', () => {
  const dirs: string[] = []
  const fresh = () => {
    const root = mkdtempSync(join(tmpdir(), 'kpipe-pglite-lock-'))
    dirs.push(root)
    return join(root, 'pg')
  }
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('refuses a second instance on the same directory until the first is closed', async () => {
    const dir = fresh()
    const db = await openPglite(dir)
    try {
      expect(existsSync(`${dir}.lock`)).toBe(true)
      const second = openPglite(dir)
      await expect(second).rejects.toBeInstanceOf(DatabaseInUseError)
      await expect(second).rejects.toThrow(`the embedded database at ${dir} is in use by process ${process.pid}`)
      expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    } finally {
      await db.close()
    }
    // closing released it (opening PGlite again would only cost time: the lock is what matters)
    expect(existsSync(`${dir}.lock`)).toBe(false)
    lockPgliteDir(dir)()
  })

  it('refuses while another live process holds the lock, and says what to do', async () => {
    const dir = fresh()
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' })
    try {
      writeFileSync(`${dir}.lock`, String(holder.pid))
      const error = await openPglite(dir).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(DatabaseInUseError)
      expect((error as DatabaseInUseError).pid).toBe(holder.pid)
      expect((error as DatabaseInUseError).hint).toMatch(/kpipe up|DATABASE_URL/)
    } finally {
      holder.kill('SIGKILL')
    }
  })

  it('takes over the lock of a process that is gone', async () => {
    const dir = fresh()
    const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' })
    writeFileSync(`${dir}.lock`, gone.stdout.trim())
    const release = lockPgliteDir(dir)
    expect(readFileSync(`${dir}.lock`, 'utf8')).toBe(String(process.pid))
    release()
    expect(existsSync(`${dir}.lock`)).toBe(false)
  })
})
