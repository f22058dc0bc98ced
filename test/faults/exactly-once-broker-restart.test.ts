import { expect, it } from 'vitest'
import { loginEnv, settingsOf } from '../../src/logins/logins.fixture.ts'
import { exitOf, spawnKpipe, waitFor } from '../support/cli.ts'
import { auditWithCli, committedLineage, faultSeed, ownBroker, reportFigures, seconds, streamLogins } from './fault-support.ts'
import { OffsetWatch } from './offset-watch.ts'

const LOGINS = 30_000
const LOGIN_RATE = 1500

/**
 * `kpipe logins process --exactly-once` while its broker is stopped and started again: its
 * transactions overlap (one commits while the next one's outputs go out, over three transactional
 * ids). The broker stays down until the processor warns of a failure, so that transactions under
 * way fail, some with their abort. The same process must carry on by itself, and a
 * read_committed reader must see every input's output exactly once.
 */
it('exactly-once through a broker restart: the same processor carries on, 0 missing and 0 duplicated under read_committed', async () => {
  const { seed } = faultSeed('exactly-once-broker-restart')
  const broker = await ownBroker()
  const env = loginEnv({ KAFKA_BROKERS: broker.bootstrap, LOG_LEVEL: 'warn' })
  const settings = settingsOf(env)
  const group = `faults-eos-${settings.TOPIC_LOGINS}`
  const outputs = [settings.TOPIC_PROCESSED, settings.TOPIC_CLEANED, settings.TOPIC_ERRORS]
  const processor = spawnKpipe(['logins', 'process', '--exactly-once', '--group', group, '--instance-id', 'eos-restart'], env)
  const alive = () => {
    if (processor.exitCode !== null || processor.signalCode !== null) throw new Error(`the processor exited (code ${processor.exitCode}, signal ${processor.signalCode}): ${processor.output().slice(-3000)}`)
    return true
  }
  let logins: ReturnType<typeof streamLogins> | undefined
  let exit: Awaited<ReturnType<typeof exitOf>> | undefined
  try {
    const watch = new OffsetWatch(settings)
    const started = Date.now()
    logins = streamLogins(settings, { count: LOGINS, rate: LOGIN_RATE, seed })
    await waitFor(async () => alive() && (await watch.committedSum(group)) >= 5000, 120_000, 'the processor to be working through the stream')
    const before = { committed: await watch.committedSum(group), loginsSent: logins.sent }
    await watch.close()

    const stopAt = Date.now()
    await broker.stop()
    // down long enough for the processor's requests to fail (not only be repeated by the client):
    // until it warns that a write, a commit or Kafka itself failed
    await waitFor(() => alive() && /"level":[456]0/.test(processor.output()), 120_000, 'the processor to warn that the broker is gone')
    const noticedMs = Date.now() - stopAt
    await broker.restart()
    const outageMs = Date.now() - stopAt
    const restartedAt = Date.now()
    const after = new OffsetWatch(settings)
    let inputs: number
    let processorBackMs: number
    try {
      await waitFor(async () => alive() && (await after.committedSum(group)) > before.committed, 180_000, 'the processor to commit again after the restart')
      processorBackMs = Date.now() - restartedAt
      await logins.done
      inputs = await after.endSum([settings.TOPIC_LOGINS])
      await waitFor(async () => alive() && (await after.committedSum(group)) >= inputs, 300_000, 'every login committed')
    } finally {
      await after.close()
    }
    // the same process, still running
    expect(alive()).toBe(true)

    // what the restart did to the processor's transactions, for the report: its warnings, each message once
    const warnings = [...new Set(processor.output().split('\n').filter((l) => /"level":[456]0/.test(l)).map((l) => (JSON.parse(l) as { msg?: string }).msg?.slice(0, 160) ?? l.slice(0, 160)))]
    const audit = auditWithCli(env, true)
    const reader = await committedLineage(settings, outputs)
    reportFigures('exactly-once-broker-restart', {
      seed, logins: inputs, outageSeconds: seconds(outageMs), warnedAfterSeconds: seconds(noticedMs), processorBackAfterRestartSeconds: seconds(processorBackMs),
      streamRetries: logins.retries, stopAfter: before, totalSeconds: seconds(Date.now() - started),
      missing: audit.missing, duplicated: audit.duplicated, readCommittedRecords: reader.records, readCommittedDistinct: reader.distinct,
      processorWarnings: warnings,
    })
    expect(audit.inputs).toBe(inputs)
    expect(audit.missing).toBe(0)
    expect(audit.duplicated).toBe(0)
    expect(audit.unmatched).toBe(0)
    expect(audit.code).toBe(0)
    expect(reader.records).toBe(inputs)
    expect(reader.distinct).toBe(inputs)
  } finally {
    logins?.stop()
    processor.kill('SIGTERM')
    exit = await exitOf(processor)
    await broker.remove()
  }
  expect(exit.code, processor.output().slice(-2000)).toBe(0)
})
