import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { runKpipe } from '../../../test/support/cli.ts'
import { brokerStatus, freeBrokerPort, isAlive, stopLocalBroker } from '../../shell/broker/local-broker.ts'
import { parseJavaMajor } from '../../shell/broker/java.ts'

describe('kpipe kafka start | status | stop', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-cli-kafka-'))
  afterAll(async () => {
    await stopLocalBroker(dataDir)
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('starts a broker that answers, reports it, stops it and waits', async () => {
    const port = await freeBrokerPort()
    const env = { KPIPE_DATA_DIR: dataDir }
    const start = runKpipe(['kafka', 'start', '--port', String(port)], env, 120_000)
    expect(start.stderr + start.stdout).toContain(`127.0.0.1:${port}`)
    expect(start.code).toBe(0)
    expect(start.stdout).toContain(`export KAFKA_BROKERS=127.0.0.1:${port}`)
    const info = brokerStatus(dataDir)!
    expect(isAlive(info.pid)).toBe(true)

    const status = runKpipe(['kafka', 'status'], env)
    expect(status.code).toBe(0)
    expect(status.stdout).toContain(`running at 127.0.0.1:${port}`)

    const again = runKpipe(['kafka', 'start', '--port', String(port)], env)
    expect(again.code).toBe(0)
    expect(again.stdout).toContain('already running')

    const stop = runKpipe(['kafka', 'stop'], env)
    expect(stop.code).toBe(0)
    expect(isAlive(info.pid)).toBe(false)

    const after = runKpipe(['kafka', 'status'], env)
    expect(after.code).toBe(1)
    expect(after.stdout).toContain('not running')
  }, 240_000)

  it('refuses a port that is already in use, with a clear message', async () => {
    const server = createServer()
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)))
    try {
      const result = runKpipe(['kafka', 'start', '--port', String(port)], { KPIPE_DATA_DIR: join(dataDir, 'busy') })
      expect(result.code).toBe(1)
      // and says who listens there: this test's process
      expect(result.stderr).toContain(`port ${port} on 127.0.0.1 is already in use: process ${process.pid} listens there`)
    } finally {
      server.close()
    }
  })

  it('says what to do when Java is missing or too old', () => {
    const missing = runKpipe(['kafka', 'start', '--port', '1'], { KPIPE_DATA_DIR: join(dataDir, 'nojava'), JAVA_HOME: join(dataDir, 'no-such-jdk') })
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/Java was not found .*Java 17 or newer/)
    expect(missing.stderr).toContain('install a JDK 17+')
    expect(parseJavaMajor('openjdk version "17.0.15" 2025-04-15')).toBe(17)
    expect(parseJavaMajor('java version "1.8.0_392"')).toBe(8)
    expect(parseJavaMajor('openjdk version "21" 2023-09-19')).toBe(21)
    expect(parseJavaMajor('nonsense')).toBeUndefined()
  })

  it('names the command to retry when Maven cannot resolve the jars', () => {
    const result = runKpipe(['kafka', 'start', '--port', '1'], {
      KPIPE_DATA_DIR: join(dataDir, 'nomaven'),
      KPIPE_CACHE_DIR: join(dataDir, 'empty-cache'),
      // an unreachable repository and an empty local one: resolution must fail
      MAVEN_OPTS: `-Dmaven.repo.local=${join(dataDir, 'm2')} -Dmaven.repo.remote=http://127.0.0.1:9/ -o`,
    }, 120_000)
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('Maven could not resolve Apache Kafka')
    expect(result.stderr).toContain('retry with: mvn')
  })
})
