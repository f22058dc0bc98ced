import { describe, expect, it } from 'vitest'
import { createLoginTopics, loginEnv, settingsOf } from '../../src/logins/logins.fixture.ts'
import { exitOf, spawnKpipe, waitFor } from '../support/cli.ts'
import { auditWithCli, committedLineage, faultSeed, reportFigures, seconds } from './fault-support.ts'
import { OffsetWatch } from './offset-watch.ts'

const COUNT = 200_000
const KILLS = 10
/**
 * The generator's pace: slower than the processor, so the stream (~130 s) outlasts the 10
 * kill-and-restart cycles and every restarted processor finds new work to be killed in.
 */
const RATE = 1500

/**
 * `kpipe logins generate` streams 200,000 events while `kpipe logins process` runs; each time
 * the processor has written something, it is SIGKILLed after a random (seeded) delay and started
 * again with the same group, 10 times. Then `kpipe audit` must find every input offset.
 */
describe('the processor SIGKILLed 10 times during a 200,000-message stream', () => {
  for (const mode of ['at-least-once', 'exactly-once'] as const) {
    it(`${mode}: kpipe audit finds 0 missing${mode === 'exactly-once' ? ', and a read_committed reader 0 duplicates' : ''}`, async () => {
      const { seed, random } = faultSeed(`processor-kill ${mode}`)
      const env = loginEnv({ LOG_LEVEL: 'warn' })
      const settings = settingsOf(env)
      await createLoginTopics(settings)
      const outputs = [settings.TOPIC_PROCESSED, settings.TOPIC_CLEANED, settings.TOPIC_ERRORS]
      const group = `faults-${settings.TOPIC_LOGINS}`
      const args = ['logins', 'process', '--group', group, '--instance-id', 'kill-test', ...(mode === 'exactly-once' ? ['--exactly-once'] : [])]
      const watch = new OffsetWatch(settings)
      const started = Date.now()
      const generator = spawnKpipe(['logins', 'generate', '--count', String(COUNT), '--rate', String(RATE), '--seed', String(seed), '--invalid-ratio', '0.2'], env)
      let processor = spawnKpipe(args, env)
      const processors = [processor]
      const kills: { atMs: number; afterStartMs: number; committed: number; outputs: number; generated: number }[] = []
      let generatorEndedAt: number | undefined
      void exitOf(generator).then(() => (generatorEndedAt = Date.now()))
      try {
        for (let k = 0; k < KILLS; k++) {
          const spawnedAt = Date.now()
          const outputsBefore = await watch.endSum(outputs)
          // progress first (a kill during start-up proves little), then a random moment within the next 3 s
          await waitFor(async () => (await watch.endSum(outputs)) > outputsBefore, 120_000, `outputs of processor ${k + 1}`).catch(async (error: Error) => {
            throw new Error(`${error.message} (generator ${generator.exitCode === null ? 'still running' : `exited ${generator.exitCode}`}, ${await watch.committedSum(group)} of ${COUNT} committed)`)
          })
          const delay = Math.floor(random() * 3000)
          await new Promise((r) => setTimeout(r, delay))
          if (processor.exitCode !== null) throw new Error(`the processor exited by itself (code ${processor.exitCode}): ${processor.output().slice(-2000)}`)
          processor.kill('SIGKILL')
          expect((await exitOf(processor)).signal).toBe('SIGKILL')
          kills.push({
            atMs: Date.now() - started,
            afterStartMs: Date.now() - spawnedAt,
            committed: await watch.committedSum(group),
            outputs: await watch.endSum(outputs),
            generated: await watch.endSum([settings.TOPIC_LOGINS]),
          })
          processor = spawnKpipe(args, env)
          processors.push(processor)
        }
        const generated = await exitOf(generator)
        expect(generated.code, generator.output().slice(-2000)).toBe(0)
        expect(await watch.endSum([settings.TOPIC_LOGINS])).toBe(COUNT)
        await waitFor(async () => (await watch.committedSum(group)) >= COUNT, 300_000, 'every input committed after the last restart')
      } finally {
        processor.kill('SIGTERM')
        generator.kill('SIGTERM')
      }
      expect((await exitOf(processor)).code, processor.output().slice(-2000)).toBe(0)
      const streamMs = Date.now() - started
      await watch.close()

      const audit = auditWithCli(env, mode === 'exactly-once')
      const figures: Record<string, unknown> = {
        seed, inputs: audit.inputs, kills: kills.length,
        killsDuringGeneration: kills.filter((k) => k.generated < COUNT).length,
        killMomentsSeconds: kills.map((k) => seconds(k.atMs)),
        committedAtKills: kills.map((k) => k.committed),
        generationSeconds: seconds((generatorEndedAt ?? Date.now()) - started), totalSeconds: seconds(streamMs),
        missing: audit.missing, duplicated: audit.duplicated,
      }
      let reader: Awaited<ReturnType<typeof committedLineage>> | undefined
      if (mode === 'exactly-once') {
        reader = await committedLineage(settings, outputs)
        figures.readCommittedRecords = reader.records
        figures.readCommittedDistinct = reader.distinct
      }
      if (audit.missing > 0) {
        // a diagnosis for the report: were the missing ones written in transactions that were aborted, or never written?
        const uncommitted = await committedLineage(settings, outputs, false)
        const examples = Object.entries(audit.missingOffsets).flatMap(([p, offsets]) => offsets.map((o) => `${p}/${o}`))
        figures.missingExamples = examples
        figures.missingExamplesInReadUncommitted = examples.filter((e) => uncommitted.offsets.has(e)).length
        // what the processors warned about (log level warn and above), for the diagnosis
        figures.processorWarnings = processors.flatMap((p, i) => p.output().split('\n').filter((l) => /"level":[456]0/.test(l)).map((l) => `#${i}: ${l.slice(0, 600)}`))
        const end = new OffsetWatch(settings)
        try {
          figures.committedAtEnd = await end.committedSum(group)
          figures.openTransactions = Object.fromEntries(await Promise.all(outputs.map(async (t) => [t, await end.openTransactions(t)])))
        } finally {
          await end.close()
        }
      }
      reportFigures(`processor-kill ${mode}`, figures)
      expect(audit.inputs).toBe(COUNT)
      expect(audit.missing).toBe(0)
      expect(audit.unmatched).toBe(0)
      expect(audit.code).toBe(0)
      // the kills were spread over the stream, not bunched at its end
      expect(kills[0]!.generated).toBeLessThan(COUNT)
      if (reader) {
        expect(audit.duplicated).toBe(0)
        expect(reader.records).toBe(COUNT)
        expect(reader.distinct).toBe(COUNT)
      }
    })
  }
})
