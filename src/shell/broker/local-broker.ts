import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { Admin } from '@platformatic/kafka'
import { SetupError } from '../errors.ts'
import { sleep } from '../backoff.ts'
import { StoppedWaiting } from '../retry.ts'
import { beforeImmediateExit, killProcessGroup } from '../immediate-exit.ts'
import { requireJava } from './java.ts'
import { resolveKafkaJars, type ResolveProgress } from './jars.ts'
import { heldBy } from '../port-holder.ts'

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
  /** server.properties entries added to, or replacing, the defaults (listeners for TLS/SASL, …) */
  properties?: Record<string, string>
  /** extra arguments of the storage format (e.g. `--add-scram`) */
  formatArgs?: string[]
  /** how to tell that the broker is up; default: a PLAINTEXT metadata request to 127.0.0.1:port */
  ready?: () => Promise<boolean>
  /** aborting it during the wait stops the starting broker and ends the start in StoppedWaiting */
  signal?: AbortSignal
  /**
   * The broker lives only as long as this process (`kpipe up`, `kpipe bench`): an immediate exit
   * (a second Ctrl-C) kills its process group, from its start until stopLocalBroker stopped it.
   * Without it (`kpipe kafka start`) only a broker still starting is killed so.
   */
  ownedByThisProcess?: boolean
  /** with ownedByThisProcess: whether a broker already running for this data dir is this process's too (one an earlier, killed run left) */
  takeOver?: (running: LocalBrokerInfo) => boolean
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

/** The broker recorded under dataDir, if its process is still alive. */
export function brokerStatus(dataDir: string): LocalBrokerInfo | undefined {
  return nodeStatus(brokerDir(dataDir))
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export async function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer()
    server.once('error', () => resolvePromise(true))
    server.listen(port, host, () => server.close(() => resolvePromise(false)))
  })
}

/**
 * A port nobody listens on right now, for a server the caller (or its child) starts next. Drawn
 * at random below the range the OS gives outgoing connections their local ports from (Linux:
 * ip_local_port_range, 32768–60999 by default), so no client connection can take it between this
 * check and the bind; the OS's own choice of a free port is from that very range. Elsewhere, or
 * with a range that leaves no room below it, the OS chooses.
 */
export async function freePort(): Promise<number> {
  const lowest = ephemeralPortsFrom()
  if (lowest !== undefined && lowest > FIXED_PORTS_FROM + 1000) {
    for (let i = 0; i < 50; i++) {
      const port = FIXED_PORTS_FROM + Math.floor(Math.random() * (lowest - FIXED_PORTS_FROM))
      if (!handedOut.has(port) && !(await portInUse(port))) return handOut(port)
    }
  }
  return handOut(await osChosenPort())
}

/**
 * The ports this process has handed out, most recent last: a caller that picks two ports before
 * starting anything on either (a broker's and a dashboard's) must get two different ones, and a
 * draw at random could repeat one. Kept to the last 4,096.
 */
const handedOut = new Set<number>()
function handOut(port: number): number {
  handedOut.add(port)
  if (handedOut.size > 4096) handedOut.delete(handedOut.values().next().value!)
  return port
}

/** where freePort draws from: above the ports well-known services tend to use */
const FIXED_PORTS_FROM = 10_000

/** the first port of the OS's range for outgoing connections, when it says */
export function ephemeralPortsFrom(): number | undefined {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    return Number.isInteger(first) && first > 0 ? first : undefined
  } catch {
    return undefined
  }
}

function osChosenPort(): Promise<number> {
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

/**
 * A port for `kpipe up --kafka-port` / `kpipe kafka start --port`: free now, and so is the next
 * one, which the local broker's controller takes.
 */
export async function freeBrokerPort(): Promise<number> {
  for (;;) {
    const port = await freePort()
    if (port < 65535 && !handedOut.has(port + 1) && !(await portInUse(port + 1))) {
      handOut(port + 1) // the controller's
      return port
    }
  }
}

interface NodeLayout {
  dir: string
  nodeId: number
  port: number
  controllerPort: number
  /** `id@host:port` of every controller of the cluster */
  voters: string
  /** replication factor of the internal topics */
  internalReplicas: number
}

function serverProperties(node: NodeLayout, overrides: Record<string, string> = {}): string {
  const minIsr = Math.min(2, node.internalReplicas)
  const properties: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': String(node.nodeId),
    'controller.quorum.voters': node.voters,
    listeners: `PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${node.port}`,
    'controller.listener.names': 'CONTROLLER',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': join(node.dir, 'data'),
    // fewer partitions of the internal topics: the first group join takes ~1 s instead of several
    'offsets.topic.replication.factor': String(node.internalReplicas),
    'offsets.topic.num.partitions': '10',
    'transaction.state.log.replication.factor': String(node.internalReplicas),
    'transaction.state.log.min.isr': String(minIsr),
    'transaction.state.log.num.partitions': '10',
    'share.coordinator.state.topic.replication.factor': String(node.internalReplicas),
    'share.coordinator.state.topic.min.isr': String(minIsr),
    'group.initial.rebalance.delay.ms': '0',
    // topics are created on purpose (kpipe topics create), never by a typo in a consumer
    'auto.create.topics.enable': 'false',
    'num.partitions': '3',
    ...overrides,
  }
  return ['# written by kpipe at every start; edit kpipe, not this file', ...Object.entries(properties).map(([k, v]) => `${k}=${v}`), ''].join('\n')
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

/**
 * Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding. Like Kafka's own
 * `Uuid.randomUuid()`, an id that starts with `-` is drawn again: the storage tool would read it
 * as an option (`--cluster-id/-t: expected one argument`), one format in 64.
 */
export function newClusterId(random: (size: number) => Buffer = randomBytes): string {
  for (;;) {
    const id = random(16).toString('base64url')
    if (!id.startsWith('-')) return id
  }
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
export async function startLocalBroker(options: LocalBrokerOptions): Promise<LocalBrokerInfo & { alreadyRunning: boolean; owned: boolean }> {
  const dir = brokerDir(options.dataDir)
  const running = brokerStatus(options.dataDir)
  if (running) {
    const owned = options.ownedByThisProcess === true && options.takeOver?.(running) === true
    if (owned) killOnImmediateExit(dir, running.pid)
    return { ...running, alreadyRunning: true, owned }
  }
  const port = options.port ?? 9092
  const controllerPort = options.controllerPort ?? port + 1
  const node: NodeLayout = { dir, nodeId: 1, port, controllerPort, voters: `1@127.0.0.1:${controllerPort}`, internalReplicas: 1 }
  return { ...(await startNode(node, newClusterId(), options)), alreadyRunning: false, owned: options.ownedByThisProcess === true }
}

/** The immediate-exit kill of each owned broker's process group, by its node directory, until the broker is stopped. */
const ownedBrokers = new Map<string, () => void>()

function killOnImmediateExit(dir: string, pid: number): void {
  ownedBrokers.get(dir)?.()
  ownedBrokers.set(dir, beforeImmediateExit(() => killProcessGroup(pid)))
}

export interface LocalClusterOptions extends Omit<LocalBrokerOptions, 'port' | 'controllerPort'> {
  nodes: number
  /** one free port per broker listener and per controller listener */
  ports: number[]
  controllerPorts: number[]
}

export interface LocalCluster {
  bootstrap: string
  nodes: (LocalBrokerInfo & { nodeId: number; nodeDir: string })[]
}

/**
 * A cluster of `nodes` combined broker+controller nodes on loopback (one JVM each), internal
 * topics replicated to every node (at most 3) with min.insync.replicas 2. For failure tests:
 * kill one node and the others carry on.
 */
export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const clusterId = newClusterId()
  const voters = options.controllerPorts.slice(0, options.nodes).map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(',')
  const layouts: NodeLayout[] = Array.from({ length: options.nodes }, (_, i) => ({
    dir: join(resolve(options.dataDir), `node-${i + 1}`),
    nodeId: i + 1,
    port: options.ports[i]!,
    controllerPort: options.controllerPorts[i]!,
    voters,
    internalReplicas: Math.min(3, options.nodes),
  }))
  const bootstrap = layouts.map((l) => `127.0.0.1:${l.port}`).join(',')
  // The controllers need each other for a quorum: start every node, then wait for all.
  const nodes = await Promise.all(layouts.map((layout) => startNode(layout, clusterId, { ...options, timeoutMs: options.timeoutMs ?? 120_000, ready: options.ready ?? (() => clusterAnswers(bootstrap, options.nodes)) })))
  return { bootstrap, nodes: nodes.map((n, i) => ({ ...n, nodeId: layouts[i]!.nodeId, nodeDir: layouts[i]!.dir })) }
}

async function clusterAnswers(bootstrap: string, nodes: number): Promise<boolean> {
  const admin = new Admin({ clientId: 'kpipe-probe', bootstrapBrokers: bootstrap.split(','), timeout: 2000, retries: 0 })
  try {
    return (await admin.metadata({ topics: [] })).brokers.size >= nodes
  } catch {
    return false
  } finally {
    await admin.close().catch(() => {})
  }
}

async function startNode(node: NodeLayout, clusterId: string, options: Omit<LocalBrokerOptions, 'dataDir' | 'port' | 'controllerPort'> & { dataDir: string }): Promise<LocalBrokerInfo> {
  const { dir, port, controllerPort } = node
  const status = options.onStatus ?? (() => {})
  const java = requireJava()
  for (const p of [port, controllerPort]) {
    if (await portInUse(p)) {
      throw new SetupError(`port ${p} on 127.0.0.1 is already in use${heldBy(p)}`, `stop what listens there, or start the broker on another port: kpipe kafka start --port ${port + 10}`)
    }
  }
  const libs = await resolveKafkaJars(options.onProgress)
  mkdirSync(join(dir, 'data'), { recursive: true })
  const properties = join(dir, 'server.properties')
  writeFileSync(properties, serverProperties(node, options.properties))
  writeFileSync(join(dir, 'log4j2.yaml'), LOG4J)
  const classpath = `${libs}/*`
  const log4j = `-Dlog4j2.configurationFile=${join(dir, 'log4j2.yaml')}`
  if (!existsSync(join(dir, 'data', 'meta.properties'))) {
    status('formatting KRaft storage')
    await runJava(java.command, [log4j, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', properties, '--ignore-formatted', ...(options.formatArgs ?? [])], join(dir, 'format.log'))
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
  writeFileSync(join(dir, 'broker.json'), JSON.stringify(info, null, 2))
  status(`waiting for the broker on ${info.bootstrap}`)
  let exited = false
  child.once('exit', () => {
    exited = true
  })
  // a process that exits at once while the broker starts takes the half-started broker with it; the owner, for its whole life
  killOnImmediateExit(dir, pid)
  let started = false
  try {
    const timeoutMs = options.timeoutMs ?? 90_000
    const deadline = Date.now() + timeoutMs
    const ready = options.ready ?? (() => answersMetadata(info.bootstrap))
    while (!(await ready())) {
      if (exited || !isAlive(pid)) {
        rmSync(join(dir, 'broker.json'), { force: true })
        throw new SetupError(`the Kafka broker exited during start-up; last lines of ${logFile}:\n${lastLines(logFile)}`, `fix the cause above and run kpipe kafka start again`)
      }
      if (options.signal?.aborted) {
        await stopNode(dir)
        throw new StoppedWaiting(`stopped while the Kafka broker on ${info.bootstrap} started; it is stopped again`)
      }
      if (Date.now() > deadline) {
        await stopNode(dir)
        throw new SetupError(`the Kafka broker did not answer on ${info.bootstrap} within ${Math.round(timeoutMs / 1000)} s; last lines of ${logFile}:\n${lastLines(logFile)}`)
      }
      await sleep(250, options.signal)
    }
    started = true
  } finally {
    if (!started || options.ownedByThisProcess !== true) forgetImmediateExit(dir)
  }
  return info
}

function forgetImmediateExit(dir: string): void {
  ownedBrokers.get(dir)?.()
  ownedBrokers.delete(dir)
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
  return stopNode(brokerDir(dataDir), timeoutMs)
}

/** Stops every node of a cluster started by startLocalCluster. */
export async function stopLocalCluster(cluster: LocalCluster, timeoutMs = 30_000): Promise<void> {
  await Promise.all(cluster.nodes.map((n) => stopNode(n.nodeDir, timeoutMs)))
}

/** Stops the node whose files are in `dir`; SIGKILL at once with `timeoutMs` 0 (a crash). */
export async function stopNode(dir: string, timeoutMs = 30_000): Promise<LocalBrokerInfo | undefined> {
  const file = join(dir, 'broker.json')
  const info = nodeStatus(dir)
  if (!info) {
    rmSync(file, { force: true })
    forgetImmediateExit(dir)
    return undefined
  }
  process.kill(info.pid, timeoutMs > 0 ? 'SIGTERM' : 'SIGKILL')
  const deadline = Date.now() + timeoutMs
  while (isAlive(info.pid) && Date.now() < deadline) await sleep(100)
  if (isAlive(info.pid)) {
    process.kill(info.pid, 'SIGKILL')
    while (isAlive(info.pid)) await sleep(50)
  }
  rmSync(file, { force: true })
  forgetImmediateExit(dir)
  return info
}

/** The node recorded in `dir`, if its process is alive. */
export function nodeStatus(dir: string): LocalBrokerInfo | undefined {
  const file = join(dir, 'broker.json')
  if (!existsSync(file)) return undefined
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as LocalBrokerInfo
    return isAlive(info.pid) ? info : undefined
  } catch {
    return undefined
  }
}
