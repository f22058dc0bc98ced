import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { childEnv, exitOf, waitFor } from '../support/cli.ts'
import { freeBrokerPort, freePort, isAlive, stopLocalBroker } from '../../src/shell/broker/local-broker.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** A user's shell: none of the npm_* variables that `npm test` sets (npx would run the repository's kpipe). */
function userEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const out = childEnv(env)
  for (const name of Object.keys(out)) if (name.startsWith('npm_')) delete out[name]
  return out
}

function npm(args: string[], cwd: string): string {
  const result = spawnSync('npm', [...args, '--no-audit', '--no-fund'], { cwd, encoding: 'utf8', env: userEnv(), timeout: 240_000 })
  if (result.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

/** `command up` as a user runs it in a terminal: its own process group, which Ctrl-C signals as a whole. */
function startUp([command, ...kpipe]: string[], args: string[], cwd: string, dataDir: string, path: string): ChildProcess & { output: () => string } {
  const child = spawn(command!, [...kpipe, 'up', ...args], {
    cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: userEnv({ KPIPE_DATA_DIR: dataDir, KAFKA_BROKERS: undefined, DATABASE_URL: undefined, KPIPE_HASH_KEY: undefined, METRICS_INTERVAL: '250ms', LOG_LEVEL: 'info', PATH: path }),
  })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()))
  return Object.assign(child, { output: () => output })
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

/** Starts the stack from an installed package, checks it works, presses Ctrl-C, checks nothing is left. */
async function upFromPackage(command: string[], cwd: string, path: string, expectedExit: { code: number | null; signal: NodeJS.Signals | null }): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-pkg-up-'))
  const [kafkaPort, port] = [await freeBrokerPort(), await freePort()]
  const up = startUp(command, ['--kafka-port', String(kafkaPort), '--port', String(port), '--rate', '200'], cwd, dataDir, path)
  try {
    await waitFor(() => up.output().includes('kpipe is running.') || up.exitCode !== null, 240_000, 'the ready banner')
    expect(up.output()).toContain(`dashboard   http://127.0.0.1:${port}/`)
    const page = await fetch(`http://127.0.0.1:${port}/`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('<html')
    await waitFor(async () => {
      const summary = (await (await fetch(`http://127.0.0.1:${port}/api/summary`)).json()) as { total: { processed: number } }
      return summary.total.processed > 0
    }, 120_000, 'processed logins in the dashboard')
    const broker = JSON.parse(readFileSync(join(dataDir, 'kafka', 'broker.json'), 'utf8')) as { pid: number }
    process.kill(-up.pid!, 'SIGINT') // Ctrl-C
    const exit = await exitOf(up)
    expect(exit, up.output().slice(-3000)).toEqual(expectedExit)
    expect(up.output()).toContain('stopping the local Kafka broker')
    await waitFor(() => !isAlive(broker.pid) && !groupAlive(up.pid!), 10_000, 'no process of the run left')
  } finally {
    if (groupAlive(up.pid!)) process.kill(-up.pid!, 'SIGKILL')
    await stopLocalBroker(dataDir).catch(() => {})
    rmSync(dataDir, { recursive: true, force: true })
  }
}

describe('the packed tarball', () => {
  // made when the suite runs, not when it is collected: a filtered run (-t) would leave it behind
  let work = ''
  let tarball = ''
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'kpipe-pkg-'))
    // `npm test` has just built dist/; packing runs no script (prepare would build again)
    npm(['pack', '--ignore-scripts', '--pack-destination', work], ROOT)
    tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!)
  }, 120_000)
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('holds what kpipe needs at run time and nothing of the sources or tests', () => {
    const files = spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' }).stdout.split('\n')
    for (const needed of ['package/bin/kpipe.js', 'package/bin/node-runtime.js', 'package/dist/cli/main.js', 'package/dist/bundle/main.js', 'package/dist/logins/process/rules-worker.js', 'package/dist/dashboard/public/index.html', 'package/kafka/pom.xml', 'package/LICENSE']) {
      expect(files).toContain(needed)
    }
    expect(files.filter((f) => f.startsWith('package/src/') || f.includes('.test.') || f.startsWith('package/scripts/'))).toEqual([])
    expect(JSON.parse(spawnSync('tar', ['xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }).stdout).scripts.postinstall).toBeUndefined()
  })

  it('npm install <tarball> && npx kpipe up: the stack runs, and Ctrl-C leaves nothing running', async () => {
    const project = join(work, 'project')
    mkdirSync(project)
    npm(['install', tarball], project)
    // installed as it was packed: nothing in node_modules was rewritten
    const consumer = join(project, 'node_modules', '@platformatic', 'kafka', 'dist', 'clients', 'consumer', 'consumer.js')
    expect(readFileSync(consumer, 'utf8')).not.toContain('kpipe')
    // kpipe stops cleanly with exit code 0; npx then ends itself with the SIGINT it was sent, as npm does
    await upFromPackage(['npx', 'kpipe'], project, process.env.PATH!, { code: null, signal: 'SIGINT' })
  }, 600_000)

  it('npm install -g <tarball> && kpipe up: the stack runs, and Ctrl-C leaves nothing running', async () => {
    const prefix = join(work, 'global')
    npm(['install', '-g', '--prefix', prefix, tarball], work)
    const bin = join(prefix, 'bin')
    expect(existsSync(join(bin, 'kpipe'))).toBe(true)
    await upFromPackage(['kpipe'], work, `${bin}${delimiter}${process.env.PATH}`, { code: 0, signal: null })
  }, 600_000)
})
