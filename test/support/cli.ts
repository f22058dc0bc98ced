import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'
import { errorLine } from '../../src/shell/log.ts'

export const KPIPE_BIN = fileURLToPath(new URL('../../bin/kpipe.js', import.meta.url))

/** The environment of a child: ours with `env` on top; an undefined value removes the variable. */
export function childEnv(env: Record<string, string | undefined>, defaults: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env, ...defaults }
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete out[name]
    else out[name] = value
  }
  return out
}

/** The built CLI (`npm test` builds first), run to completion; `nodeArgs` go to node before it (e.g. an `--import` hook). */
export function runKpipe(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000, nodeArgs: string[] = []) {
  const result = spawnSync(process.execPath, [...nodeArgs, KPIPE_BIN, ...args], {
    encoding: 'utf8',
    env: childEnv(env, { LOG_LEVEL: 'warn' }),
    timeout: timeoutMs,
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** The built CLI as a long-running child, its output collected; `nodeArgs` go to node before it. */
export function spawnKpipe(args: string[], env: Record<string, string | undefined> = {}, nodeArgs: string[] = []): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [...nodeArgs, KPIPE_BIN, ...args], {
    env: childEnv(env, { LOG_LEVEL: 'info' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()))
  return Object.assign(child, { output: () => output })
}

/**
 * The port a part started with `--metrics-port 0` serves its metrics on, read from its log line;
 * fails with the part's output when it does not say so in time.
 */
export async function metricsPortOf(child: ChildProcess & { output: () => string }, timeoutMs = 60_000): Promise<number> {
  const found = await waitFor(() => /metrics on http:\/\/[^\s/]+:(\d+)\/metrics/.exec(child.output()) ?? (child.exitCode !== null ? 'exited' : null), timeoutMs, 'its metrics address')
    .catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; its output:\n${child.output().slice(-3000)}`)
    })
  if (found === 'exited') throw new Error(`it exited (${child.exitCode}) before serving its metrics; its output:\n${child.output().slice(-3000)}`)
  return Number(found[1])
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 30_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value as NonNullable<T>
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${errorLine(lastError)}` : ''}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
}

/**
 * A failed command's stderr: `kpipe: <what went wrong>` on one line, at most a `→ <what to do>`
 * line after it, nothing else (no stack trace, no log noise). Returns the first line.
 */
export function expectOneLineError(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '')
  expect(lines.length, stderr).toBeGreaterThanOrEqual(1)
  expect(lines.length, stderr).toBeLessThanOrEqual(2)
  expect(lines[0], stderr).toMatch(/^kpipe: /)
  if (lines[1] !== undefined) expect(lines[1], stderr).toMatch(/^ {2}→ /)
  expect(stderr).not.toMatch(/\n\s+at /)
  return lines[0]!
}

/** Processes whose command line names `dir` (the broker's JVM names its data dir): what a run left behind. */
export function processesOf(dir: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry))
    } catch {
      // ended meanwhile
    }
  }
  return pids
}
