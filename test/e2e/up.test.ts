import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exitOf, processesOf, runKpipe, spawnKpipe, waitFor } from '../support/cli.ts'
import { answersMetadata, freeBrokerPort, freePort, isAlive, stopLocalBroker } from '../../src/shell/broker/local-broker.ts'

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url)
  if (!response.ok) throw new Error(`${url}: ${response.status}`)
  return (await response.json()) as T
}

interface Summary { total: { received: number; processed: number; filtered: { stale: number }; errors: Record<string, number> } }
interface Metrics { sources: { database: number; live: number }; points: { time: number[]; cpu_usage: (number | null)[]; memory_usage: (number | null)[] } }

/**
 * A data directory for a describe block, made when the suite runs: made when it is collected, a
 * filtered run (-t) that skips the suite would leave it behind (its afterAll never runs).
 */
function suiteDir(prefix: string): string {
  const dir = join(tmpdir(), `${prefix}${randomUUID().slice(0, 8)}`)
  beforeAll(() => mkdirSync(dir, { mode: 0o700 }))
  return dir
}

describe('kpipe up', () => {
  const dataDir = suiteDir('kpipe-up-')
  afterAll(async () => {
    await stopLocalBroker(dataDir)
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('runs the whole stack with a local broker and PGlite, and stops cleanly on SIGINT', async () => {
    const [kafkaPort, port] = [await freeBrokerPort(), await freePort()]
    const env = { KPIPE_DATA_DIR: dataDir, KAFKA_BROKERS: undefined, DATABASE_URL: undefined, KPIPE_HASH_KEY: undefined, METRICS_INTERVAL: '250ms', LOG_LEVEL: 'info' }
    const up = spawnKpipe(['up', '--kafka-port', String(kafkaPort + 0), '--port', String(port), '--rate', '200'], env)
    try {
      await waitFor(() => up.output().includes('kpipe is running.') || up.exitCode !== null, 180_000, 'the ready banner')
      expect(up.output()).toContain(`dashboard   http://127.0.0.1:${port}/`)
      const base = `http://127.0.0.1:${port}`
      const summary = await waitFor(async () => {
        const s = await getJson<Summary>(`${base}/api/summary`)
        return s.total.processed > 0 && s.total.received > s.total.processed ? s : undefined
      }, 120_000, 'processed logins in /api/summary')
      expect(summary.total.received).toBeGreaterThan(0)
      const metrics = await waitFor(async () => {
        const m = await getJson<Metrics>(`${base}/api/metrics?range=5m`)
        return m.sources.database >= 3 ? m : undefined
      }, 120_000, 'metric rows in the database')
      expect(metrics.points.memory_usage.some((v) => v !== null && v > 0 && v <= 100)).toBe(true)
      // the logins sink counts into the same embedded PGlite, and the login panel reads it there
      const activity = await waitFor(async () => {
        const a = await getJson<{ total: number; split: { outcome: { value: string }[] } }>(`${base}/api/logins/activity?range=1h`)
        return a.total > 0 ? a : undefined
      }, 120_000, 'login activity in the embedded database')
      expect(activity.split.outcome.map((o) => o.value)).toContain('processed')
      expect(existsSync(join(dataDir, 'hash-key'))).toBe(true)
    } finally {
      if (up.exitCode === null) up.kill('SIGINT')
    }
    const broker = JSON.parse(readFileSync(join(dataDir, 'kafka', 'broker.json'), 'utf8').toString()) as { pid: number }
    const exit = await exitOf(up)
    expect(exit, up.output().slice(-3000)).toEqual({ code: 0, signal: null })
    expect(up.output()).toContain('stopping the local Kafka broker')
    // no process left behind: the broker's JVM is gone too
    expect(isAlive(broker.pid)).toBe(false)
  }, 420_000)

  it('a second run reuses the data dir and the local hash key', async () => {
    const key = readFileSync(join(dataDir, 'hash-key'), 'utf8')
    const [kafkaPort, port] = [await freeBrokerPort(), await freePort()]
    const up = spawnKpipe(['up', '--kafka-port', String(kafkaPort), '--port', String(port), '--rate', '20'], { KPIPE_DATA_DIR: dataDir, KAFKA_BROKERS: undefined, DATABASE_URL: undefined, KPIPE_HASH_KEY: undefined })
    try {
      await waitFor(() => up.output().includes('kpipe is running.') || up.exitCode !== null, 180_000, 'the ready banner')
      expect(up.output()).toContain('using the local hash key')
      expect(up.output()).toMatch(/topics: 0 created, 8 already there/)
    } finally {
      if (up.exitCode === null) up.kill('SIGTERM')
    }
    expect((await exitOf(up)).code).toBe(0)
    expect(readFileSync(join(dataDir, 'hash-key'), 'utf8')).toBe(key)
  }, 300_000)
})

describe('kpipe up and the terminal it runs in', () => {
  const dataDir = suiteDir('kpipe-up-hup-')
  afterAll(async () => {
    await stopLocalBroker(dataDir)
    rmSync(dataDir, { recursive: true, force: true })
  })
  const env = { KPIPE_DATA_DIR: dataDir, KAFKA_BROKERS: undefined, DATABASE_URL: undefined, KPIPE_HASH_KEY: undefined }

  it('a second kpipe up says which one runs; SIGHUP (a closed terminal) stops everything, the broker included', async () => {
    const [kafkaPort, port] = [await freeBrokerPort(), await freePort()]
    const up = spawnKpipe(['up', '--kafka-port', String(kafkaPort), '--port', String(port), '--rate', '20'], env)
    try {
      await waitFor(() => up.output().includes('kpipe is running.') || up.exitCode !== null, 180_000, 'the ready banner')
      const second = runKpipe(['up', '--kafka-port', String(await freeBrokerPort()), '--port', String(await freePort())], env)
      expect(second.code).toBe(1)
      expect(second.stderr).toContain(`kpipe up is already running (pid ${up.pid}), dashboard at http://127.0.0.1:${port}/`)
      expect(second.stdout + second.stderr).not.toContain('starting the local Kafka broker')
    } finally {
      if (up.exitCode === null) up.kill('SIGHUP')
    }
    const broker = JSON.parse(readFileSync(join(dataDir, 'kafka', 'broker.json'), 'utf8')) as { pid: number }
    const exit = await exitOf(up)
    expect(exit, up.output().slice(-3000)).toEqual({ code: 0, signal: null })
    expect(up.output()).toContain('SIGHUP: stopping everything')
    expect(isAlive(broker.pid)).toBe(false)
    expect(processesOf(dataDir)).toEqual([])
    expect(existsSync(join(dataDir, 'up.json'))).toBe(false)
  }, 420_000)

  it('the broker a killed kpipe up left running is taken over by the next one, and stopped by its Ctrl-C', async () => {
    const [kafkaPort, port] = [await freeBrokerPort(), await freePort()]
    const killed = spawnKpipe(['up', '--kafka-port', String(kafkaPort), '--port', String(port), '--rate', '20'], env)
    await waitFor(() => killed.output().includes('kpipe is running.') || killed.exitCode !== null, 180_000, 'the ready banner')
    killed.kill('SIGKILL')
    await exitOf(killed)
    const broker = JSON.parse(readFileSync(join(dataDir, 'kafka', 'broker.json'), 'utf8')) as { pid: number }
    expect(isAlive(broker.pid)).toBe(true) // what SIGKILL leaves: nothing could clean up

    const next = spawnKpipe(['up', '--kafka-port', String(kafkaPort), '--port', String(port), '--rate', '20'], env)
    try {
      await waitFor(() => next.output().includes('kpipe is running.') || next.exitCode !== null, 180_000, 'the ready banner')
      expect(next.output()).toContain(`taking over the local broker at 127.0.0.1:${kafkaPort} (pid ${broker.pid}) that an earlier kpipe up (pid ${killed.pid}) left running`)
    } finally {
      if (next.exitCode === null) next.kill('SIGINT')
    }
    expect((await exitOf(next)).code, next.output().slice(-3000)).toBe(0)
    expect(next.output()).toContain('stopping the local Kafka broker')
    expect(isAlive(broker.pid)).toBe(false)
    expect(processesOf(dataDir)).toEqual([])
  }, 420_000)
})

describe('kpipe up and Ctrl-C', () => {
  const dataDir = suiteDir('kpipe-up-int-')
  afterAll(async () => {
    await stopLocalBroker(dataDir)
    rmSync(dataDir, { recursive: true, force: true })
  })
  const env = { KPIPE_DATA_DIR: dataDir, KAFKA_BROKERS: undefined, DATABASE_URL: undefined, KPIPE_HASH_KEY: undefined }

  it('a Ctrl-C while the broker starts stops the starting broker and nothing more starts: a clean stop, exit 0', async () => {
    const [kafkaPort, port] = [await freeBrokerPort(), await freePort()]
    const up = spawnKpipe(['up', '--kafka-port', String(kafkaPort), '--port', String(port), '--rate', '20'], env)
    try {
      await waitFor(() => up.output().includes('waiting for the broker on') || up.exitCode !== null, 180_000, 'the broker start')
      const broker = JSON.parse(readFileSync(join(dataDir, 'kafka', 'broker.json'), 'utf8')) as { pid: number }
      expect(isAlive(broker.pid)).toBe(true)
    } finally {
      if (up.exitCode === null) up.kill('SIGINT')
    }
    const exit = await exitOf(up)
    expect(exit, up.output().slice(-3000)).toEqual({ code: 0, signal: null })
    expect(up.output()).not.toContain('kpipe is running.')
    expect(up.output()).not.toMatch(/topics: \d+ created/)
    expect(processesOf(dataDir)).toEqual([])
    expect(existsSync(join(dataDir, 'up.json'))).toBe(false)
  }, 300_000)

  it('a second Ctrl-C exits at once (130) and takes the local broker it started with it', async () => {
    const [kafkaPort, port] = [await freeBrokerPort(), await freePort()]
    const up = spawnKpipe(['up', '--kafka-port', String(kafkaPort), '--port', String(port), '--rate', '20'], env)
    let brokerPid = 0
    try {
      await waitFor(() => up.output().includes('kpipe is running.') || up.exitCode !== null, 180_000, 'the ready banner')
      brokerPid = (JSON.parse(readFileSync(join(dataDir, 'kafka', 'broker.json'), 'utf8')) as { pid: number }).pid
      up.kill('SIGINT')
      await waitFor(() => up.output().includes('SIGINT: stopping everything') || up.exitCode !== null, 30_000, 'the first stop')
      // the parts are stopping; the broker's clean shutdown comes after them
      expect(isAlive(brokerPid)).toBe(true)
    } finally {
      if (up.exitCode === null) up.kill('SIGINT')
    }
    const exit = await exitOf(up)
    expect(exit, up.output().slice(-3000)).toEqual({ code: 130, signal: null })
    // killed with it, not left running (SIGKILL is sent before the exit; the kernel ends the JVM a moment later)
    await waitFor(() => !isAlive(brokerPid) && processesOf(dataDir).length === 0, 10_000, 'the broker JVM to end')
    expect(runKpipe(['kafka', 'status'], env).code).toBe(1)
  }, 300_000)

  it('a second Ctrl-C leaves the broker of kpipe kafka start running: it is not this run\'s', async () => {
    const [kafkaPort, port] = [await freeBrokerPort(), await freePort()]
    const start = runKpipe(['kafka', 'start', '--port', String(kafkaPort)], env, 180_000)
    expect(start.code, start.stderr).toBe(0)
    const brokerPid = (JSON.parse(readFileSync(join(dataDir, 'kafka', 'broker.json'), 'utf8')) as { pid: number }).pid
    const up = spawnKpipe(['up', '--kafka-port', String(kafkaPort), '--port', String(port), '--rate', '20'], env)
    try {
      await waitFor(() => up.output().includes('kpipe is running.') || up.exitCode !== null, 180_000, 'the ready banner')
      expect(up.output()).toContain(`using the local broker already running at 127.0.0.1:${kafkaPort} (pid ${brokerPid}, started by kpipe kafka start)`)
      up.kill('SIGINT')
      await waitFor(() => up.output().includes('SIGINT: stopping everything') || up.exitCode !== null, 30_000, 'the first stop')
    } finally {
      if (up.exitCode === null) up.kill('SIGINT')
    }
    expect(await exitOf(up), up.output().slice(-3000)).toEqual({ code: 130, signal: null })
    // still serving: a broker SIGKILLed before the exit never runs again (a killed one lingers as a zombie, which isAlive counts)
    expect(await answersMetadata(`127.0.0.1:${kafkaPort}`, 10_000)).toBe(true)
    expect(processesOf(dataDir)).toEqual([brokerPid])
    expect(runKpipe(['kafka', 'stop'], env).code).toBe(0)
    expect(processesOf(dataDir)).toEqual([])
  }, 300_000)
})

describe('kpipe up when a part cannot start', () => {
  it('a taken dashboard port fails before anything starts, in one line', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-up-fail-'))
    const { createServer } = await import('node:net')
    const blocker = createServer()
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)))
    try {
      const kafkaPort = await freeBrokerPort()
      const up = spawnKpipe(['up', '--kafka-port', String(kafkaPort), '--port', String(port)], { KPIPE_DATA_DIR: dataDir, KAFKA_BROKERS: undefined, DATABASE_URL: undefined })
      const exit = await exitOf(up)
      expect(exit.code, up.output().slice(-2000)).toBe(1)
      expect(up.output()).toContain(`port ${port} on 127.0.0.1 is already in use (the dashboard's): process ${process.pid} listens there`)
      // checked first: no broker was started (nor stopped), nothing written
      expect(up.output()).not.toContain('Kafka broker')
      expect(existsSync(join(dataDir, 'kafka'))).toBe(false)
      expect(existsSync(join(dataDir, 'up.json'))).toBe(false)
    } finally {
      blocker.close()
      await stopLocalBroker(dataDir)
      rmSync(dataDir, { recursive: true, force: true })
    }
  }, 240_000)

  it('a part that fails after the broker started stops the broker, and says why in one line', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-up-fail-'))
    const { createServer } = await import('node:net')
    const [kafkaPort, port] = [await freeBrokerPort(), await freePort()]
    const blocker = createServer()
    try {
      const up = spawnKpipe(['up', '--kafka-port', String(kafkaPort), '--port', String(port)], { KPIPE_DATA_DIR: dataDir, KAFKA_BROKERS: undefined, DATABASE_URL: undefined })
      // the checks before the start passed; the port is taken while the broker starts
      await waitFor(() => up.output().includes('starting the local Kafka broker') || up.exitCode !== null, 60_000, 'the broker start')
      await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', () => resolve()))
      const exit = await exitOf(up)
      expect(exit.code, up.output().slice(-2000)).toBe(1)
      expect(up.output()).toContain(`port ${port} on 127.0.0.1 is already in use: process ${process.pid} listens there`)
      expect(up.output()).toContain('stopping the local Kafka broker')
      expect(existsSync(join(dataDir, 'kafka', 'broker.json'))).toBe(false)
      expect(processesOf(dataDir)).toEqual([])
    } finally {
      blocker.close()
      await stopLocalBroker(dataDir)
      rmSync(dataDir, { recursive: true, force: true })
    }
  }, 240_000)
})
