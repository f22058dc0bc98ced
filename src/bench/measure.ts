import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as delay } from 'node:timers/promises'
import { beforeImmediateExit } from '../shell/immediate-exit.ts'
import { portListeners } from '../shell/port-holder.ts'
import { RULES_THREAD_NAME } from '../logins/process/rules-thread.ts'

/** The kpipe CLI the parts under measurement run from, as a user runs them (`npm run build` first). */
export const KPIPE_BIN = fileURLToPath(new URL('../../bin/kpipe.js', import.meta.url))

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Nearest-rank percentile of an already sorted array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

/** Polls `check` every `everyMs` until it returns true; throws naming `what` after the deadline. */
export async function pollUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`)
    await delay(everyMs)
  }
}

export interface PartProcess {
  child: ChildProcess
  pid: number
  /** the last lines it wrote, for error messages */
  output(): string
  /** peak resident set size so far (VmHWM), in bytes */
  peakRss(): number
  /** user + system CPU time so far, in milliseconds */
  cpuMs(): number
  /** the same, by thread */
  threadCpuMs(): ThreadCpu
  exited(): boolean
  /** SIGTERM, then SIGKILL after the deadline; resolves with the exit code */
  stop(timeoutMs?: number): Promise<number | null>
}

const running = new Set<PartProcess>()
/** Kafka's own tools (the ceiling's ProducerPerformance, ConsumerPerformance) under way */
const tools = new Set<ChildProcess>()

/** Stops every part and tool still running (on Ctrl-C: no child outlives the bench). */
export async function stopParts(): Promise<void> {
  for (const tool of tools) tool.kill('SIGKILL')
  await Promise.all([...running].map((part) => part.stop(5000)))
}

/**
 * A child that must not outlive the bench, even when a second Ctrl-C exits at once: killed then,
 * and (a tool) by stopParts. Forgotten when it exits.
 */
export function ownChild(child: ChildProcess, kind: 'part' | 'tool'): void {
  if (kind === 'tool') tools.add(child)
  const forget = beforeImmediateExit(() => child.kill('SIGKILL'))
  child.once('exit', () => {
    tools.delete(child)
    forget()
  })
}

/** Runs `node bin/kpipe.js …` as a child, the way an operator runs a part, so its memory and CPU are its own. */
export function startPart(args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = []): PartProcess {
  const child = spawn(process.execPath, [...nodeArgs, KPIPE_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  ownChild(child, 'part')
  let tail = ''
  const keep = (data: Buffer) => {
    tail = (tail + data.toString()).slice(-4000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  let exitCode: number | null | undefined
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    running.delete(part)
    resolve((exitCode = code))
  }))
  const pid = child.pid
  if (pid === undefined) throw new Error(`could not start ${process.execPath} ${KPIPE_BIN}`)
  const part: PartProcess = {
    child,
    pid,
    output: () => tail,
    peakRss: () => procStatusKb(pid, 'VmHWM') * 1024,
    cpuMs: () => processCpuMs(pid),
    threadCpuMs: () => threadCpuMs(pid),
    exited: () => exitCode !== undefined,
    async stop(timeoutMs = 15_000) {
      if (exitCode !== undefined) return exitCode
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      try {
        return await exit
      } finally {
        clearTimeout(timer)
      }
    },
  }
  running.add(part)
  return part
}

function procStatusKb(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`/proc/${pid}/status has no ${field}`)
  return Number(match[1])
}

/** A process's CPU time by thread, in milliseconds. */
export interface ThreadCpu {
  /** the main thread (the event loop: the client, kpipe's loop, the encoder) */
  main: number
  /** the processor's rules thread */
  rules: number
  /** V8's helper threads (parallel scavenges, concurrent marking, sweeping, compiling), for every isolate of the process */
  v8_helpers: number
  /** any other thread (libuv's pool, the inspector's) */
  other: number
}

/** A ThreadCpu of `figure` for each kind of thread. */
export function byThreadKind(figure: (kind: keyof ThreadCpu) => number): ThreadCpu {
  return { main: figure('main'), rules: figure('rules'), v8_helpers: figure('v8_helpers'), other: figure('other') }
}

/**
 * CPU time of each thread of a process, in milliseconds, grouped by what the thread is: Node
 * names V8's helpers `V8Worker` and a worker thread after its `name` (the first 15 characters). A
 * thread that ends between the listing and its reading is left out.
 */
export function threadCpuMs(pid: number): ThreadCpu {
  const cpu = byThreadKind(() => 0)
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let comm: string
    let ms: number
    try {
      comm = readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trimEnd()
      ms = taskCpuMs(`/proc/${pid}/task/${task}`)
    } catch {
      continue
    }
    const kind = task === String(pid) ? 'main' : comm === RULES_THREAD_NAME.slice(0, 15) ? 'rules' : comm === 'V8Worker' ? 'v8_helpers' : 'other'
    cpu[kind] += ms
  }
  return cpu
}

/** One task's CPU time in milliseconds (`dir`: its /proc/<pid>/task/<tid>), as processCpuMs reads it. */
function taskCpuMs(dir: string): number {
  try {
    return schedstatMs(dir)
  } catch {
    return statCpuMs(`${dir}/stat`)
  }
}

/** The scheduler's nanosecond counter of a task (`dir`: its /proc directory), in milliseconds. */
function schedstatMs(dir: string): number {
  return Number(readFileSync(`${dir}/schedstat`, 'utf8').split(' ')[0]) / 1e6
}

/** utime + stime of a `stat` file (a process's or a task's) in milliseconds: clock ticks of 10 ms. */
function statCpuMs(path: string): number {
  const stat = readFileSync(path, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): utime is field 14, stime 15; USER_HZ is 100
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/**
 * CPU time of a process, all threads, in milliseconds: the scheduler's nanosecond counters
 * (schedstat of every task under /proc/<pid>/task) where the kernel has them, else utime + stime from
 * /proc/<pid>/stat in clock ticks of 10 ms (too coarse for a sample that costs 1 ms).
 */
export function processCpuMs(pid: number): number {
  try {
    let ms = 0
    for (const task of readdirSync(`/proc/${pid}/task`)) ms += schedstatMs(`/proc/${pid}/task/${task}`)
    return ms
  } catch {
    return statCpuMs(`/proc/${pid}/stat`)
  }
}

/**
 * A whole process's CPU time in milliseconds, its ended threads included: utime + stime of
 * /proc/<pid>/stat, in clock ticks of 10 ms. For a process whose threads come and go (a JVM), where
 * summing the live threads' counters (processCpuMs) would lose the time of those that ended.
 */
export function wholeProcessCpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/stat`)
}

/**
 * The processes of this machine that listen on the loopback addresses among `bootstrap`
 * (`host:port,…`): the broker's own, when it runs here, found by its listening socket
 * (portListeners). Empty when the brokers run elsewhere, or when their processes cannot be read
 * (another user's).
 */
export function loopbackListeners(bootstrap: string): number[] {
  const pids = new Set<number>()
  for (const address of bootstrap.split(',')) {
    const match = /^\[?(127\.\d+\.\d+\.\d+|localhost|::1)\]?:(\d+)$/.exec(address.trim())
    if (!match) continue
    for (const listener of portListeners(Number(match[2])) ?? []) if (listener.pid !== undefined) pids.add(listener.pid)
  }
  return [...pids]
}
