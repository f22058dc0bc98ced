import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { connectionOf, loginEnv, settingsOf } from '../../src/logins/logins.fixture.ts'
import { freePort, startLocalCluster, stopLocalCluster, stopNode, type LocalCluster } from '../../src/shell/broker/local-broker.ts'
import { ensureTopics } from '../../src/shell/kafka/topics.ts'
import { exitOf, spawnKpipe, waitFor } from '../support/cli.ts'
import { auditWithCli, faultSeed, reportFigures, seconds, streamLogins } from './fault-support.ts'
import { OffsetWatch } from './offset-watch.ts'

const LOGINS = 60_000
const RATE = 1500

/**
 * A 3-node KRaft cluster on loopback, the login topics with replication factor 3 and
 * min.insync.replicas=2; one node (chosen by the seed) SIGKILLed while `kpipe logins process`
 * works through a steady stream. Acks=all writes still have two in-sync replicas, so processing
 * must go on by itself, and the audit must find every input.
 */
it('a 3-broker cluster (RF 3, min.insync.replicas=2), one broker killed mid-stream: processing continues, 0 missing', async () => {
  const { seed, random } = faultSeed('cluster-broker-kill')
  const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-faults-cluster-'))
  let cluster: LocalCluster | undefined
  let exit: Awaited<ReturnType<typeof exitOf>> | undefined
  let processor: ReturnType<typeof spawnKpipe> | undefined
  let stream: ReturnType<typeof streamLogins> | undefined
  try {
    const ports = [await freePort(), await freePort(), await freePort()]
    const controllerPorts = [await freePort(), await freePort(), await freePort()]
    const clusterStart = Date.now()
    cluster = await startLocalCluster({ dataDir, nodes: 3, ports, controllerPorts, heapMb: 384, timeoutMs: 240_000 })
    const clusterStartMs = Date.now() - clusterStart
    const env = loginEnv({ KAFKA_BROKERS: cluster.bootstrap, LOG_LEVEL: 'warn' })
    const settings = settingsOf(env)
    const s = settings
    await ensureTopics(connectionOf(settings), [s.TOPIC_LOGINS, s.TOPIC_PROCESSED, s.TOPIC_ERRORS, s.TOPIC_CLEANED, s.TOPIC_SUMMARY, s.TOPIC_METRICS]
      .map((name) => ({ name, partitions: 3, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } })))
    const group = `faults-${settings.TOPIC_LOGINS}`
    const proc = spawnKpipe(['logins', 'process', '--group', group], env)
    processor = proc
    const alive = () => {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`the processor exited (code ${proc.exitCode}, signal ${proc.signalCode}): ${proc.output().slice(-3000)}`)
      return true
    }
    const watch = new OffsetWatch(settings)
    const started = Date.now()
    stream = streamLogins(settings, { count: LOGINS, rate: RATE, seed })
    try {
      await waitFor(async () => alive() && (await watch.committedSum(group)) >= 10_000, 180_000, 'the processor to be working through the stream')
      const victim = cluster.nodes[Math.floor(random() * cluster.nodes.length)]!
      const atKill = { committed: await watch.committedSum(group), sent: stream.sent }
      const killedAt = Date.now()
      await stopNode(victim.nodeDir, 0)
      await waitFor(async () => alive() && (await watch.committedSum(group)) > atKill.committed + 2000, 180_000, 'the processor to commit again after the kill')
      const backMs = Date.now() - killedAt
      await stream.done
      const inputs = await watch.endSum([settings.TOPIC_LOGINS])
      await waitFor(async () => alive() && (await watch.committedSum(group)) >= inputs, 300_000, 'every login committed')
      const caughtUpMs = Date.now() - started
      const audit = auditWithCli(env, false)
      reportFigures('cluster-broker-kill', {
        seed, killedNode: victim.nodeId, clusterStartSeconds: seconds(clusterStartMs), atKill, inputs,
        committingAgainAfterKillSeconds: seconds(backMs), streamRetries: stream.retries, totalSeconds: seconds(caughtUpMs),
        missing: audit.missing, duplicated: audit.duplicated,
      })
      expect(audit.inputs).toBe(inputs)
      expect(audit.inputs).toBeGreaterThanOrEqual(LOGINS)
      expect(audit.missing).toBe(0)
      expect(audit.code).toBe(0)
      // the same process all along
      expect(alive()).toBe(true)
    } finally {
      await watch.close()
    }
  } finally {
    stream?.stop()
    processor?.kill('SIGTERM')
    if (processor) exit = await exitOf(processor)
    if (cluster) await stopLocalCluster(cluster, 10_000).catch(() => {})
    rmSync(dataDir, { recursive: true, force: true })
  }
  expect(exit?.code, processor?.output().slice(-2000)).toBe(0)
})
