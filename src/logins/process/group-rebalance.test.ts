import { Admin } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'
import { clientOptions } from '../../shell/kafka/connection.ts'
import { exitOf, runKpipe, spawnKpipe, waitFor } from '../../../test/support/cli.ts'
import { committedOffsets, committedOutputs, connectionOf, generateLogins, loginEnv } from '../logins.fixture.ts'

const COUNT = 20_000

/**
 * Two exactly-once processors in one group (SPEC: "scales by running more processes in the same
 * consumer group"): the second joins while the first is writing, so the group rebalances between
 * two live members, and the first then stops gracefully, so its partitions move again. Every input
 * must have exactly one output under read_committed.
 */
describe('two exactly-once processors in one group', () => {
  it('a member joining mid-stream and one leaving: every input has exactly one output under read_committed', async () => {
    const env = loginEnv()
    const settings = await generateLogins(env, COUNT)
    const outputs = [settings.TOPIC_PROCESSED, settings.TOPIC_CLEANED, settings.TOPIC_ERRORS]
    const group = `g-${settings.TOPIC_LOGINS}`
    const args = (instance: string) => ['logins', 'process', '--group', group, '--instance-id', instance, '--batch-size', '100', '--exactly-once']
    const admin = new Admin(clientOptions(connectionOf(settings), 'kpipe-test-admin'))
    const members = async () => (await admin.describeGroups({ groups: [group] })).get(group)?.members.size ?? 0
    const committed = async () => Number((await committedOffsets(settings, group)).reduce((a, b) => a + b, 0n))

    const first = spawnKpipe(args('first'), env)
    const second = spawnKpipe(args('second'), env)
    second.kill('SIGSTOP') // held until the first is under way
    try {
      await waitFor(async () => (await committed()) >= 1000, 30_000, 'the first processor under way')
      second.kill('SIGCONT')
      await waitFor(async () => (await members()) === 2, 30_000, 'both processors members of the group')
      // both write for a while after the rebalance
      const atRebalance = await committed()
      expect(atRebalance).toBeLessThan(COUNT)
      await waitFor(async () => (await committed()) >= Math.min(COUNT - 1000, atRebalance + 2000), 30_000, 'progress with two members')
      first.kill('SIGTERM')
      expect((await exitOf(first)).code).toBe(0)
      await waitFor(async () => (await committed()) >= COUNT, 60_000, 'every input committed by the one left')
    } catch (error) {
      throw new Error(`${(error as Error).message}; the processors said:\n${first.output().slice(-2000)}\n---\n${second.output().slice(-2000)}`, { cause: error })
    } finally {
      first.kill('SIGTERM')
      second.kill('SIGCONT')
      second.kill('SIGTERM')
      await admin.close()
    }
    expect((await exitOf(second)).code).toBe(0)

    const audit = runKpipe(['audit', '--strict', '--json'], env)
    const report = JSON.parse(audit.stdout) as { inputs: number; missing: number; duplicated: number }
    expect(report).toMatchObject({ inputs: COUNT, missing: 0, duplicated: 0 })
    expect(audit.code).toBe(0)
    expect(await committedOutputs(settings, outputs)).toEqual({ records: COUNT, distinctInputs: COUNT })
  }, 240_000)
})
