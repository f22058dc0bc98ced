import { describe, expect, it } from 'vitest'
import { exitOf, runKpipe, spawnKpipe, waitFor } from '../../../test/support/cli.ts'
import { committedOffsets, committedOutputs, endOffsetSum, generateLogins, loginEnv } from '../logins.fixture.ts'

const COUNT = 8000

describe.concurrent('the processor killed mid-stream and restarted loses nothing', () => {
  for (const mode of ['at-least-once', 'exactly-once'] as const) {
    it(`${mode}: kpipe audit finds no missing offset${mode === 'exactly-once' ? ' and a read_committed reader no duplicate' : ''}`, async () => {
      const env = loginEnv()
      const settings = await generateLogins(env, COUNT)
      const outputs = [settings.TOPIC_PROCESSED, settings.TOPIC_CLEANED, settings.TOPIC_ERRORS]
      const args = ['logins', 'process', '--group', `g-${settings.TOPIC_LOGINS}`, '--instance-id', 'kill-test', '--batch-size', '100', ...(mode === 'exactly-once' ? ['--exactly-once'] : [])]

      const first = spawnKpipe(args, env)
      await waitFor(async () => (await endOffsetSum(settings, outputs))   >= 1000, 30_000, 'the first outputs')
      first.kill('SIGKILL')
      expect((await exitOf(first)).signal).toBe('SIGKILL')
      // killed in the middle: far from everything was written
      expect(await endOffsetSum(settings, outputs)).toBeLessThan(COUNT)

      const second = spawnKpipe(args, env)
      try {
        await waitFor(async () => (await committedOffsets(settings, `g-${settings.TOPIC_LOGINS}`)).reduce((a, b) => a + b, 0n) >= BigInt(COUNT), 45_000, 'every input committed after the restart')
      } catch (error) {
        // what the restarted processor was doing (joining, fencing, retrying) is the diagnosis
        throw new Error(`${(error as Error).message}; the restarted processor said:\n${second.output().slice(-4000)}`, { cause: error })
      } finally {
        second.kill('SIGTERM')
      }
      expect((await exitOf(second)).code).toBe(0)

      const audit = runKpipe(['audit', ...(mode === 'exactly-once' ? ['--strict'] : []), '--json'], env)
      const report = JSON.parse(audit.stdout) as { inputs: number; missing: number; duplicated: number }
      expect(report.inputs).toBe(COUNT)
      expect(report.missing).toBe(0)
      expect(audit.code).toBe(0)
      if (mode === 'exactly-once') {
        expect(report.duplicated).toBe(0)
        // and the same seen by a plain read_committed reader of the three topics
        expect(await committedOutputs(settings, outputs)).toEqual({ records: COUNT, distinctInputs: COUNT })
      }
      // its steps: generating the inputs, up to 30 s for the first outputs, 45 s for the rest after
      // the restart, the graceful stop, and the audit (up to 60 s): more than the default 60 s
    }, 180_000)
  }
})

