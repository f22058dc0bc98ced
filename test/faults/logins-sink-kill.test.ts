import { describe, expect, inject, it } from 'vitest'
import { createLoginTopics, loginEnv, settingsOf } from '../../src/logins/logins.fixture.ts'
import { openPostgres } from '../../src/shell/postgres/database.ts'
import { exitOf, spawnKpipe, waitFor } from '../support/cli.ts'
import { createTestDatabase } from '../support/host-metrics.ts'
import { storedOffsetSum, tallyTable, tallyTopics } from '../support/login-activity.ts'
import { faultSeed, reportFigures, seconds } from './fault-support.ts'
import { OffsetWatch } from './offset-watch.ts'

const COUNT = 100_000
const KILLS = 5
/** slower than the sink, so that every restarted sink finds new work to be killed in */
const RATE = 1500

/**
 * 100,000 generated logins (a known mix: a fifth invalid or stale, a seventh of other app
 * versions) go through `kpipe logins process --exactly-once` while `kpipe logins sink` counts its
 * outputs into PostgreSQL; each time the sink has committed something new, it is SIGKILLed after
 * a random (seeded) delay and started again, 5 times. Then SUM(logins) must be the inputs, and
 * every per-outcome, per-device, per-locale and per-version sum the count read from the topics.
 */
describe('the logins sink SIGKILLed 5 times during a 100,000-login stream', () => {
  it('every count in login_activity equals the count taken from the topics', async () => {
    const { seed, random } = faultSeed('logins-sink-kill')
    const database = await createTestDatabase(inject('postgresUrl'))
    const db = openPostgres(database.url, 1)
    const env = loginEnv({ LOG_LEVEL: 'warn', DATABASE_URL: database.url })
    const settings = settingsOf(env)
    await createLoginTopics(settings)
    const group = `faults-sink-${settings.TOPIC_LOGINS}`
    const processorGroup = `faults-${settings.TOPIC_LOGINS}`
    const sinkArgs = ['logins', 'sink', '--group', group, '--batch-size', '1000']
    const watch = new OffsetWatch(settings)
    const started = Date.now()
    const generator = spawnKpipe(['logins', 'generate', '--count', String(COUNT), '--rate', String(RATE), '--seed', String(seed), '--invalid-ratio', '0.2'], env)
    const processor = spawnKpipe(['logins', 'process', '--exactly-once', '--group', processorGroup, '--instance-id', 'sink-kill'], env)
    let sink = spawnKpipe(sinkArgs, env)
    const kills: { atS: number; storedAtKill: string; inputsProcessed: number }[] = []
    try {
      for (let k = 0; k < KILLS; k++) {
        const before = await storedOffsetSum(db, group)
        // progress first (a kill during start-up proves little), then a random moment within the next 3 s
        await waitFor(async () => {
          if (sink.exitCode !== null) throw new Error(`the sink exited by itself (code ${sink.exitCode}): ${sink.output().slice(-2000)}`)
          return (await storedOffsetSum(db, group)) > before
        }, 120_000, `sink ${k + 1} to commit a batch`).catch(async (error: Error) => {
          throw new Error(`${error.message} (processor committed ${await watch.committedSum(processorGroup)} of ${COUNT}, outputs ${await watch.endSum([settings.TOPIC_PROCESSED, settings.TOPIC_CLEANED, settings.TOPIC_ERRORS])}; ` +
            `sink: ${sink.output().slice(-1500)}; processor: ${processor.output().slice(-1500)})`)
        })
        await new Promise((r) => setTimeout(r, Math.floor(random() * 3000)))
        sink.kill('SIGKILL')
        expect((await exitOf(sink)).signal).toBe('SIGKILL')
        kills.push({ atS: seconds(Date.now() - started), storedAtKill: String(await storedOffsetSum(db, group)), inputsProcessed: await watch.committedSum(processorGroup) })
        sink = spawnKpipe(sinkArgs, env)
      }
      expect((await exitOf(generator)).code, generator.output().slice(-2000)).toBe(0)
      await waitFor(async () => (await watch.committedSum(processorGroup)) >= COUNT, 300_000, 'the processor to finish the inputs')
      const expected = await tallyTopics(settings)
      expect(expected.total).toBe(COUNT)
      await waitFor(async () => (await tallyTable(db)).total >= COUNT, 300_000, 'the sink to count every output')
      sink.kill('SIGTERM')
      expect((await exitOf(sink)).code, sink.output().slice(-2000)).toBe(0)

      const stored = await tallyTable(db)
      reportFigures('logins-sink-kill', {
        seed, inputs: COUNT, kills: kills.length,
        killsBeforeTheProcessorFinished: kills.filter((k) => k.inputsProcessed < COUNT).length,
        kills_at: kills, totalSeconds: seconds(Date.now() - started),
        sum: stored.total, outcomes: stored.outcome,
      })
      expect(stored.total).toBe(COUNT)
      expect(stored).toEqual(expected)
      // the kills fell while the stream was still coming in
      expect(kills[0]!.inputsProcessed).toBeLessThan(COUNT)
    } finally {
      generator.kill('SIGTERM')
      processor.kill('SIGTERM')
      sink.kill('SIGTERM')
      await Promise.all([exitOf(generator), exitOf(processor), exitOf(sink)])
      await watch.close()
      await db.close()
      await database.drop()
    }
  })
})
