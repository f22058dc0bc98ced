#!/usr/bin/env node
// `npm run soak`: `kpipe up` at 2,000 logins/s for 20 minutes (SOAK_MINUTES, SOAK_RATE), then
// the verdict: resident memory and open file descriptors of the kpipe process flat after the
// warm-up (growth ≤ 10 %), the processor's consumer lag bounded, and `kpipe audit` 0 missing.
// Not part of CI: it takes the machine for the whole time. docs/reliability.md has the figures.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Admin } from '@platformatic/kafka'

const BIN = fileURLToPath(new URL('../bin/kpipe.js', import.meta.url))
const MINUTES = Number(process.env.SOAK_MINUTES ?? 20)
const RATE = Number(process.env.SOAK_RATE ?? 2000)
const SAMPLE_MS = 10_000
/** the first part of the run that does not count: JIT, caches, PGlite and the broker settling */
const WARM_UP_MS = Math.max(120_000, MINUTES * 60_000 * 0.15)
const MAX_GROWTH = 0.1
/** lag above this many seconds of input after the warm-up means the processor fell behind */
const MAX_LAG_SECONDS = 15

const freePort = () => new Promise((resolve) => {
  const server = createServer().listen(0, '127.0.0.1', () => {
    const { port } = server.address()
    server.close(() => resolve(port))
  })
})
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const log = (line) => process.stderr.write(`[soak] ${line}\n`)

/** The environment of a child: ours with `env` on top; an undefined value removes the variable. */
function childEnv(env) {
  const out = { ...process.env }
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete out[name]
    else out[name] = value
  }
  return out
}

function kpipe(args, env, timeoutMs = 300_000) {
  const result = spawnSync(process.execPath, [BIN, ...args], { env: childEnv(env), encoding: 'utf8', timeout: timeoutMs })
  if (result.status !== 0) throw new Error(`kpipe ${args.join(' ')} exited ${result.status}: ${result.stderr}`)
  return result.stdout
}

function procStatus(pid) {
  try {
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
    return { rssMb: Math.round(rssKb / 102.4) / 10, fds: readdirSync(`/proc/${pid}/fd`).length }
  } catch {
    return { rssMb: NaN, fds: NaN }
  }
}

async function groupLag(admin, group, topic) {
  const metadata = await admin.metadata({ topics: [topic] })
  const partitions = metadata.topics.get(topic)?.partitionsCount ?? 0
  const ends = await admin.listOffsets({ topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n })) }] })
  const [offsets] = await admin.listConsumerGroupOffsets({ groups: [group] })
  const committed = new Map((offsets?.topics.find((t) => t.name === topic)?.partitions ?? []).map((p) => [p.partitionIndex, Number(p.committedOffset)]))
  let end = 0
  let lag = 0
  for (const p of ends[0]?.partitions ?? []) {
    end += Number(p.offset)
    lag += Math.max(0, Number(p.offset) - Math.max(0, committed.get(p.partitionIndex) ?? 0))
  }
  return { end, lag }
}

const median = (values) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  return sorted.length === 0 ? NaN : sorted[Math.floor(sorted.length / 2)]
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-soak-'))
  const [kafkaPort, dashboardPort] = [await freePort(), await freePort()]
  // A broker of the soak's own (not up's), so that it outlives `up` for the final audit.
  // no DATABASE_URL: embedded PGlite, as a first user gets; no KPIPE_HASH_KEY: up makes its local one
  const env = { KPIPE_DATA_DIR: dataDir, KAFKA_BROKERS: `127.0.0.1:${kafkaPort}`, DATABASE_URL: undefined, KPIPE_HASH_KEY: undefined, LOG_LEVEL: 'warn' }
  let up
  let admin
  const started = Date.now()
  try {
    log(`${MINUTES} min at ${RATE} logins/s; data in ${dataDir}`)
    kpipe(['kafka', 'start', '--port', String(kafkaPort), '--heap', '1024'], { KPIPE_DATA_DIR: dataDir, KAFKA_BROKERS: undefined })
    kpipe(['topics', 'create', '--partitions', '3'], env)
    up = spawn(process.execPath, [BIN, 'up', '--port', String(dashboardPort), '--rate', String(RATE)], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    up.stdout.on('data', (d) => (output += d))
    up.stderr.on('data', (d) => (output += d))
    while (!output.includes('kpipe is running.')) {
      if (up.exitCode !== null) throw new Error(`kpipe up exited ${up.exitCode}: ${output.slice(-3000)}`)
      await sleep(200)
    }
    const runningAt = Date.now()
    log(`kpipe up is running (pid ${up.pid}) after ${((runningAt - started) / 1000).toFixed(1)} s`)
    admin = new Admin({ clientId: 'kpipe-soak', bootstrapBrokers: [env.KAFKA_BROKERS] })
    const brokerPid = JSON.parse(readFileSync(join(dataDir, 'kafka', 'broker.json'), 'utf8')).pid
    const samples = []
    while (Date.now() - runningAt < MINUTES * 60_000) {
      await sleep(SAMPLE_MS - ((Date.now() - runningAt) % SAMPLE_MS))
      if (up.exitCode !== null) throw new Error(`kpipe up exited ${up.exitCode} during the soak: ${output.slice(-3000)}`)
      const { end, lag } = await groupLag(admin, 'kpipe-logins', 'user-login').catch(() => ({ end: NaN, lag: NaN }))
      const sample = { atS: Math.round((Date.now() - runningAt) / 1000), ...procStatus(up.pid), brokerRssMb: procStatus(brokerPid).rssMb, generated: end, lag }
      samples.push(sample)
      log(JSON.stringify(sample))
    }

    up.kill('SIGINT')
    const exitCode = await new Promise((resolve) => (up.exitCode !== null ? resolve(up.exitCode) : up.once('exit', (code) => resolve(code))))
    log(`kpipe up stopped: exit ${exitCode}`)

    // what was generated but not yet processed when up stopped: the same group finishes it
    const hashKey = readFileSync(join(dataDir, 'hash-key'), 'utf8').trim()
    const drain = spawn(process.execPath, [BIN, 'logins', 'process', '--group', 'kpipe-logins'], { env: childEnv({ ...env, KPIPE_HASH_KEY: hashKey }), stdio: 'ignore' })
    let left = NaN
    const drainDeadline = Date.now() + 600_000
    while (!(left === 0) && Date.now() < drainDeadline) {
      await sleep(1000)
      left = (await groupLag(admin, 'kpipe-logins', 'user-login').catch(() => ({ lag: NaN }))).lag
    }
    drain.kill('SIGTERM')
    await new Promise((resolve) => (drain.exitCode !== null ? resolve() : drain.once('exit', resolve)))
    // reading millions of inputs and outputs: an hour at most, for a machine that is busy with other work too
    const audit = JSON.parse(kpipe(['audit', '--json'], { ...env, KPIPE_HASH_KEY: hashKey }, 3_600_000))

    const after = samples.filter((s) => s.atS * 1000 >= WARM_UP_MS)
    const first = after.filter((s) => s.atS * 1000 < WARM_UP_MS + 60_000)
    const last = after.filter((s) => s.atS * 1000 >= MINUTES * 60_000 - 60_000)
    const growth = (key) => median(last.map((s) => s[key])) / median(first.map((s) => s[key])) - 1
    const generated = samples.at(-1).generated - (samples.find((s) => s.atS * 1000 >= WARM_UP_MS)?.generated ?? 0)
    const result = {
      minutes: MINUTES,
      rate: RATE,
      achievedRate: Math.round(generated / ((samples.at(-1).atS * 1000 - WARM_UP_MS) / 1000)),
      warmUpSeconds: WARM_UP_MS / 1000,
      rssMb: { afterWarmUp: median(first.map((s) => s.rssMb)), end: median(last.map((s) => s.rssMb)), max: Math.max(...after.map((s) => s.rssMb)), growth: Math.round(growth('rssMb') * 1000) / 10 },
      fds: { afterWarmUp: median(first.map((s) => s.fds)), end: median(last.map((s) => s.fds)), max: Math.max(...after.map((s) => s.fds)), growth: Math.round(growth('fds') * 1000) / 10 },
      brokerRssMb: { afterWarmUp: median(first.map((s) => s.brokerRssMb)), end: median(last.map((s) => s.brokerRssMb)) },
      lag: { maxAfterWarmUp: Math.max(...after.map((s) => s.lag)), median: median(after.map((s) => s.lag)), boundRecords: MAX_LAG_SECONDS * RATE },
      upExit: exitCode,
      audit: { inputs: audit.inputs, missing: audit.missing, duplicated: audit.duplicated },
      load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    }
    const failures = [
      result.rssMb.growth > MAX_GROWTH * 100 && `resident memory grew ${result.rssMb.growth} % after the warm-up`,
      result.fds.growth > MAX_GROWTH * 100 && `open file descriptors grew ${result.fds.growth} % after the warm-up`,
      result.lag.maxAfterWarmUp > result.lag.boundRecords && `consumer lag reached ${result.lag.maxAfterWarmUp} records (bound ${result.lag.boundRecords})`,
      result.audit.missing !== 0 && `kpipe audit: ${result.audit.missing} missing`,
      exitCode !== 0 && `kpipe up exited ${exitCode}`,
      left !== 0 && 'the lag did not drain',
    ].filter(Boolean)
    process.stdout.write(`${JSON.stringify({ ...result, samples, verdict: failures.length === 0 ? 'pass' : failures }, null, 2)}\n`)
    log(failures.length === 0 ? 'pass' : `FAIL: ${failures.join('; ')}`)
    process.exitCode = failures.length === 0 ? 0 : 1
  } finally {
    if (up && up.exitCode === null) up.kill('SIGKILL')
    await admin?.close().catch(() => {})
    spawnSync(process.execPath, [BIN, 'kafka', 'stop'], { env: childEnv({ KPIPE_DATA_DIR: dataDir }), stdio: 'ignore' })
    if (!process.env.SOAK_KEEP) rmSync(dataDir, { recursive: true, force: true })
  }
}

main().catch((error) => {
  log(`failed: ${error.stack ?? error}`)
  process.exitCode = 1
})
