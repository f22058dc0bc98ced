import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { Admin } from '@platformatic/kafka'
import { SetupError } from '../errors.ts'
import { sleep } from '../backoff.ts'
import { requireJava } from './java.ts'
import { resolveKafkaJars, type ResolveProgress } from './jars.ts'

export interface LocalBrokerOptions {
  /** KPIPE_DATA_DIR; the broker lives in its kafka/ folder */
  dataDir: string
  port?: number
  /** the KRaft controller listener; default port + 1 */
  controllerPort?: number
  heapMb?: number
  /** how long to wait for the broker to answer */
  timeoutMs?: number
  onProgress?: ResolveProgress
  onStatus?: (line: string) => void
}

export interface LocalBrokerInfo {
  pid: number
  port: number
  controllerPort: number
  bootstrap: string
  logFile: string
  dataDir: string
}

export function brokerDir(dataDir: string): string {
  return join(resolve(dataDir), 'kafka')
}

function pidFile(dataDir: string): string {
  return join(brokerDir(dataDir), 'broker.json')
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The broker recorded under dataDir, if its process is still alive. */
export function brokerStatus(dataDir: string): LocalBrokerInfo | undefined {
  const file = pidFile(dataDir)
  if (!existsSync(file)) return undefined
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as LocalBrokerInfo
    return isAlive(info.pid) ? info : undefined
  } catch {
    return undefined
  }
}

export async function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer()
    server.once('error', () => resolvePromise(true))
    server.listen(port, host, () => server.close(() => resolvePromise(false)))
  })
}

/** A port nobody listens on right now, chosen by the OS. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolvePromise(port))
    })
  })
}

function serverProperties(dir: string, port: number, controllerPort: number): string {
  return [
    '# written by kpipe at every start; edit kpipe, not this file',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${join(dir, 'data')}`,
    // one node: internal topics cannot be replicated; fewer partitions start faster
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=10',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // topics are created on purpose (kpipe topics create), never by a typo in a consumer
    'auto.create.topics.enable=false',
    'num.partitions=3',
    '',
  ].join('\n')
}

const LOG4J = `Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Logger:
      - name: kafka
        level: INFO
      - name: org.apache.kafka
        level: INFO
      - name: state.change.logger
        level: WARN
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
`

/** Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding. */
export function newClusterId(): string {
  return randomBytes(16).toString('base64url')
}

function lastLines(file: string, n = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n')
  } catch {
    return '(no log)'
  }
}

/**
 * Starts a single-node Apache Kafka (broker + KRaft controller) on 127.0.0.1 in the
 * background, formatting its storage on first use. Resolves when the broker answers a
 * metadata request. A broker already running for this data dir is returned as it is.
 */
export async function startLocalBroker(options: LocalBrokerOptions): Promise<LocalBrokerInfo & { alreadyRunning: boolean }> {
  const running = brokerStatus(options.dataDir)
  if (running) return { ...running, alreadyRunning: true }
  const port = options.port ?? 9092
  const controllerPort = options.controllerPort ?? port + 1
  const status = options.onStatus ?? (() => {})
  const java = requireJava()
  for (const p of [port, controllerPort]) {
    if (await portInUse(p)) {
      throw new SetupError(`port ${p} on 127.0.0.1 is already in use`, `stop what listens there, or start the broker on another port: kpipe kafka start --port ${p === port ? port + 10 : port + 10}`)
    }
  }
  const libs = await resolveKafkaJars(options.onProgress)
  const dir = brokerDir(options.dataDir)
  mkdirSync(join(dir, 'data'), { recursive: true })
  const properties = join(dir, 'server.properties')
  writeFileSync(properties, serverProperties(dir, port, controllerPort))
  writeFileSync(join(dir, 'log4j2.yaml'), LOG4J)
  const classpath = `${libs}/*`
  const log4j = `-Dlog4j2.configurationFile=${join(dir, 'log4j2.yaml')}`
  if (!existsSync(join(dir, 'data', 'meta.properties'))) {
    status('formatting KRaft storage')
    await runJava(java.command, [log4j, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', newClusterId(), '-c', properties, '--ignore-formatted'], join(dir, 'format.log'))
  }
  const logFile = join(dir, 'broker.log')
  const out = openSync(logFile, 'a')
  const heap = options.heapMb ?? 512
  const child = spawn(
    java.command,
    [`-Xmx${heap}m`, `-Xms${Math.min(heap, 256)}m`, '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true', log4j, `-Dkafka.logs.dir=${dir}`, '-cp', classpath, 'kafka.Kafka', properties],
    { detached: true, stdio: ['ignore', out, out] },
  )
  closeSync(out)
  child.unref()
  const pid = child.pid
  if (pid === undefined) throw new SetupError('could not start java for the Kafka broker', `see ${logFile}`)
  const info: LocalBrokerInfo = { pid, port, controllerPort, bootstrap: `127.0.0.1:${port}`, logFile, dataDir: resolve(options.dataDir) }
  writeFileSync(pidFile(options.dataDir), JSON.stringify(info, null, 2))
  status(`waiting for the broker on ${info.bootstrap}`)
  let exited = false
  child.once('exit', () => {
    exited = true
  })
  const deadline = Date.now() + (options.timeoutMs ?? 90_000)
  while (!(await answersMetadata(info.bootstrap))) {
    if (exited || !isAlive(pid)) {
      rmSync(pidFile(options.dataDir), { force: true })
      throw new SetupError(`the Kafka broker exited during start-up; last lines of ${logFile}:\n${lastLines(logFile)}`, `fix the cause above and run kpipe kafka start again`)
    }
    if (Date.now() > deadline) {
      await stopLocalBroker(options.dataDir)
      throw new SetupError(`the Kafka broker did not answer on ${info.bootstrap} within ${Math.round((options.timeoutMs ?? 90_000) / 1000)} s; last lines of ${logFile}:\n${lastLines(logFile)}`)
    }
    await sleep(250)
  }
  return { ...info, alreadyRunning: false }
}

async function runJava(command: string, args: string[], logFile: string): Promise<void> {
  const out = openSync(logFile, 'w')
  const code = await new Promise<number>((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', out, out] })
    child.on('error', reject)
    child.on('close', (c) => resolvePromise(c ?? 1))
  })
  closeSync(out)
  if (code !== 0) throw new SetupError(`formatting Kafka storage failed (exit ${code}):\n${lastLines(logFile)}`)
}

/** True when a broker at `bootstrap` answers a metadata request with at least one broker. */
export async function answersMetadata(bootstrap: string, timeoutMs = 2000): Promise<boolean> {
  const admin = new Admin({ clientId: 'kpipe-probe', bootstrapBrokers: [bootstrap], timeout: timeoutMs, retries: 0 })
  try {
    const metadata = await admin.metadata({ topics: [] })
    return metadata.brokers.size > 0
  } catch {
    return false
  } finally {
    await admin.close().catch(() => {})
  }
}

/** Stops the broker of dataDir (SIGTERM, a clean shutdown), waiting up to `timeoutMs` before SIGKILL. */
export async function stopLocalBroker(dataDir: string, timeoutMs = 30_000): Promise<LocalBrokerInfo | undefined> {
  const info = brokerStatus(dataDir)
  if (!info) {
    rmSync(pidFile(dataDir), { force: true })
    return undefined
  }
  process.kill(info.pid, 'SIGTERM')
  const deadline = Date.now() + timeoutMs
  while (isAlive(info.pid) && Date.now() < deadline) await sleep(100)
  if (isAlive(info.pid)) {
    process.kill(info.pid, 'SIGKILL')
    while (isAlive(info.pid)) await sleep(50)
  }
  rmSync(pidFile(dataDir), { force: true })
  return info
}
