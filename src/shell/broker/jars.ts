import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SetupError } from '../errors.ts'

/** The Apache Kafka release kpipe runs locally; keep in step with kafka/pom.xml. */
export const KAFKA_VERSION = '4.1.2'

/** kafka/pom.xml of this package (same depth from src/ and from dist/). */
export const KAFKA_POM = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'kafka', 'pom.xml')

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KPIPE_CACHE_DIR) return env.KPIPE_CACHE_DIR
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kpipe')
}

export interface ResolveProgress {
  (event: { kind: 'start'; command: string } | { kind: 'download'; count: number; artifact: string } | { kind: 'done'; jars: number; cached: boolean }): void
}

/**
 * The directory of the broker's jars. `KPIPE_KAFKA_HOME` (an unpacked binary release of Kafka)
 * wins; otherwise Maven resolves kafka/pom.xml once into the cache, and later calls reuse it.
 */
export async function resolveKafkaJars(onProgress: ResolveProgress = () => {}, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.KPIPE_KAFKA_HOME) {
    const libs = join(env.KPIPE_KAFKA_HOME, 'libs')
    if (!existsSync(libs) || !readdirSync(libs).some((f) => f.startsWith('kafka_2.13-'))) {
      throw new SetupError(`KPIPE_KAFKA_HOME=${env.KPIPE_KAFKA_HOME} has no libs/kafka_2.13-*.jar`, 'point it at an unpacked Apache Kafka binary release (kafka_2.13-4.1.x)')
    }
    onProgress({ kind: 'done', jars: readdirSync(libs).length, cached: true })
    return libs
  }
  const home = join(cacheRoot(env), `kafka-${KAFKA_VERSION}`)
  const libs = join(home, 'libs')
  const marker = join(home, 'complete')
  if (existsSync(marker)) {
    onProgress({ kind: 'done', jars: readdirSync(libs).length, cached: true })
    return libs
  }
  mkdirSync(home, { recursive: true })
  // Resolve into a private directory and rename it into place: two processes resolving at the
  // same time never see a half-filled libs/.
  const staging = join(home, `libs.${process.pid}.${Date.now()}`)
  const args = ['-B', '-f', KAFKA_POM, 'dependency:copy-dependencies', `-DoutputDirectory=${staging}`, '-Dmdep.includeScope=runtime']
  const command = `mvn ${args.join(' ')}`
  onProgress({ kind: 'start', command })
  const output: string[] = []
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn('mvn', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let count = 0
    let pending = ''
    const onData = (chunk: Buffer) => {
      pending += chunk.toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) {
        output.push(line)
        if (output.length > 200) output.shift()
        const match = /Downloaded from \S+: (\S+)/.exec(line)
        if (match) onProgress({ kind: 'download', count: ++count, artifact: match[1]!.split('/').pop()! })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('error', reject)
    child.on('close', (c) => resolve(c ?? 1))
  }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') {
      throw new SetupError(
        'Maven (mvn) was not found; kpipe uses it to fetch Apache Kafka\'s jars from Maven Central',
        `install Maven (apt-get install maven / brew install maven), or unpack the official Kafka ${KAFKA_VERSION} binary release and set KPIPE_KAFKA_HOME to it (see the README)`,
      )
    }
    throw error
  })
  if (code !== 0) {
    rmSync(staging, { recursive: true, force: true })
    const errors = output.filter((l) => l.includes('[ERROR]')).slice(0, 3).join(' | ')
    throw new SetupError(`Maven could not resolve Apache Kafka ${KAFKA_VERSION} (exit ${code}): ${errors || 'see the output of the command below'}`, `retry with: ${command.replace(staging, libs)}`)
  }
  rmSync(libs, { recursive: true, force: true })
  renameSync(staging, libs)
  writeFileSync(marker, `${new Date().toISOString()}\n`)
  onProgress({ kind: 'done', jars: readdirSync(libs).length, cached: false })
  return libs
}
