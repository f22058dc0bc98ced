import { describe, expect, it } from 'vitest'
import { Admin } from '@platformatic/kafka'
import { createLogger } from '../../shell/log.ts'
import { clientOptions } from '../../shell/kafka/connection.ts'
import { ensureTopics } from '../../shell/kafka/topics.ts'
import type { ConsumedRecord } from '../../shell/kafka/records.ts'
import type { Settings } from '../../shell/settings.ts'
import { exitOf, runKpipe, spawnKpipe, waitFor } from '../../../test/support/cli.ts'
import { auditLogins } from '../audit/audit-logins.ts'
import { runProcessor } from '../process/run-processor.ts'
import { REPLAY_READER_PREFIX } from './replay-kafka.ts'
import { connectionOf, createLoginTopics, endOffsetSum, header, loginEnv, produceRaw, readAll, settingsOf } from '../logins.fixture.ts'

const log = createLogger('silent')
const nowS = () => Math.floor(Date.now() / 1000)
const event = (i: number, version: string) => JSON.stringify({
  user_id: `user-${i}`, app_version: version, device_type: 'android', ip: `10.1.${i % 256}.${(i * 7) % 256}`,
  locale: 'RU', device_id: `593-47-${String(i).padStart(4, '0')}`, timestamp: String(nowS()),
})

/** Runs the processor of `settings` until each of the `inputs` records of the input topic has its output, then stops it. */
async function processAll(settings: Settings, group: string, inputs: number): Promise<void> {
  const stop = new AbortController()
  const running = runProcessor({ settings, log, groupId: group, from: 'earliest', exactlyOnce: false, instanceId: 'replay-test', signal: stop.signal, maxBatchSize: 200 })
  try {
    await waitFor(async () => {
      // (end offsets would count the copies' transaction markers too)
      const audit = await auditLogins(connectionOf(settings), settings)
      return audit.missing === 0 && audit.inputs === inputs
    }, 90_000, `all ${inputs} inputs processed`)
  } finally {
    stop.abort()
    await running
  }
}

/** original input coordinates → the committed copies of them in the input topic */
function copiesByOriginal(inputs: ConsumedRecord[]): Map<string, ConsumedRecord[]> {
  const copies = new Map<string, ConsumedRecord[]>()
  for (const r of inputs) {
    const of = header(r, 'replay-of')
    if (of) copies.set(of, [...(copies.get(of) ?? []), r])
  }
  return copies
}

const replay = (env: Record<string, string>, args: string[]) => runKpipe(['logins', 'replay', ...args], env, 120_000)

describe('kpipe logins replay on a real broker', () => {
  it('app_version events allowed later go through exactly once; a second run sends nothing; invalid_json is shown to fail again', async () => {
    const env = loginEnv({ MAX_MESSAGE_AGE: '0' })
    const settings = settingsOf(env)
    await createLoginTopics(settings)
    const values: string[] = []
    // every third event is of a version filtered out: 2.2.0, allowed later, or (every 30th) 2.1.0, still not allowed then
    const versionOf = (i: number) => (i % 30 === 0 ? '2.1.0' : '2.2.0')
    for (let i = 0; i < 300; i++) values.push(i % 3 === 0 ? event(i, versionOf(i)) : i % 10 === 1 ? event(i, '2.3.0').slice(0, -2) : event(i, '2.3.0'))
    await produceRaw(settings, values)
    await processAll(settings, 'g-replay', values.length)
    const filtered = await readAll(settings, settings.TOPIC_CLEANED)
    expect(filtered).toHaveLength(100)
    const invalid = (await readAll(settings, settings.TOPIC_ERRORS)).length
    expect(invalid).toBe(values.filter((v) => !v.endsWith('}')).length)

    // invalid_json: the dry run says the same bytes would fail again, and sends nothing
    const endsBefore = await endOffsetSum(settings, [settings.TOPIC_LOGINS])
    const dry = replay(env, ['--from', 'processed-errors', '--error-type', 'invalid_json', '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain(`error type invalid_json: ${invalid} selected: ${invalid} would be sent (${invalid} from the source topic, 0 from the error record's raw payload), 0 unavailable`)
    expect(dry.stdout).toContain(`would now be: error:invalid_json ${invalid}`)
    expect(dry.stdout).toMatch(/re-sends the same bytes: they fail again as invalid_json unless the rules changed/)
    expect(dry.stdout).toMatch(/"ip":"10\.1\.\d+\.xxx/)
    expect(dry.stdout).toContain('"device_id":"(hidden)"')
    expect(dry.stdout).not.toContain('593-47-')
    expect(await endOffsetSum(settings, [settings.TOPIC_LOGINS])).toBe(endsBefore)

    // the rules change: 2.2.0 is allowed now; the processor runs on with the new setting
    const widened = settingsOf({ ...env, ALLOWED_APP_VERSIONS: '2.2.0,2.3.0' })
    const dryApp = replay({ ...env, ALLOWED_APP_VERSIONS: '2.2.0,2.3.0' }, ['--from', 'cleaned-data', '--reason', 'app_version', '--dry-run'])
    expect(dryApp.stdout).toContain('would now be: processed 90, filtered:app_version 10')

    const first = replay(env, ['--from', 'cleaned-data', '--reason', 'app_version', '--json'])
    expect(first.code, first.stderr).toBe(0)
    expect(JSON.parse(first.stdout)).toMatchObject({ id: 'cleaned-app_version', selected: 100, sent: 100, unavailable: 0 })
    expect(first.stderr).toContain('replay cleaned-app_version: 100 selected, 100 sent to')

    await processAll(widened, 'g-replay', values.length + 100)
    const inputs = await readAll(settings, settings.TOPIC_LOGINS)
    const copies = copiesByOriginal(inputs)
    expect(copies.size).toBe(100)
    const processed = await readAll(settings, settings.TOPIC_PROCESSED)
    const processedBySource = new Map(processed.map((r) => [`${header(r, 'source-partition')}/${header(r, 'source-offset')}`, r]))
    for (const f of filtered) {
      const of = `${header(f, 'source-topic')}/${header(f, 'source-partition')}/${header(f, 'source-offset')}`
      const [copy, ...more] = copies.get(of) ?? []
      expect(more, of).toHaveLength(0)
      expect(header(copy!, 'replay-id')).toBe('cleaned-app_version')
      // the original bytes, and one processed output of the copy (2.1.0 is filtered again)
      const original = inputs.find((r) => `${r.topic}/${r.partition}/${r.offset}` === of)!
      expect(copy!.value).toEqual(original.value)
      expect(copy!.key).toEqual(original.key)
      const version = (JSON.parse(original.value!.toString()) as { app_version: string }).app_version
      const output = processedBySource.get(`${copy!.partition}/${copy!.offset}`)
      if (version === '2.2.0') expect(JSON.parse(output!.value!.toString()).app_version, of).toBe('2.2.0')
      else expect(output, of).toBeUndefined()
    }
    expect(processed).toHaveLength(values.filter((v, i) => v.endsWith('}') && i % 3 !== 0).length + 90)
    expect(await readAll(settings, settings.TOPIC_CLEANED)).toHaveLength(110)

    // a second run: nothing sent again, not even the copies filtered again (exit 0)
    const second = replay(env, ['--from', 'cleaned-data', '--reason', 'app_version', '--json'])
    expect(second.code, second.stderr).toBe(0)
    expect(JSON.parse(second.stdout)).toMatchObject({ selected: 0, sent: 0, own_copies: 10 })
    expect(copiesByOriginal(await readAll(settings, settings.TOPIC_LOGINS)).size).toBe(100)
    expect((await readAll(settings, settings.TOPIC_LOGINS)).filter((r) => header(r, 'replay-id'))).toHaveLength(100)

    // the dry runs and both runs read the parking topic with a throwaway group each: none is left listed
    const admin = new Admin(clientOptions(connectionOf(settings), 'kpipe-test-admin'))
    try {
      expect([...(await admin.listGroups()).keys()].filter((id) => id.startsWith(REPLAY_READER_PREFIX))).toEqual([])
    } finally {
      await admin.close()
    }

    // the audit: every original's latest outcome, every copy in exactly one output
    const audit = runKpipe(['audit', '--json'], env)
    const report = JSON.parse(audit.stdout) as { missing: number; duplicated: number; replays: { copies: number; originals: number; latest: Record<string, number> } }
    expect(audit.code, audit.stderr).toBe(0)
    expect(report).toMatchObject({ missing: 0, duplicated: 0 })
    expect(report.replays).toMatchObject({ copies: 100, originals: 100, latest: { processed: 90, cleaned: 10, errors: 0, pending: 0 }, copiesMissing: 0, copiesDuplicated: 0 })
  }, 240_000)

  it('SIGKILL halfway, Ctrl-C, and a rerun: every selected event sent exactly once', async () => {
    const env = loginEnv({ MAX_MESSAGE_AGE: '0' })
    const settings = settingsOf(env)
    await createLoginTopics(settings)
    const COUNT = 1500
    await produceRaw(settings, Array.from({ length: COUNT }, (_, i) => event(i, '2.2.0')))
    await processAll(settings, 'g-kill', COUNT)

    const args = ['logins', 'replay', '--from', 'cleaned-data', '--reason', 'app_version', '--batch-size', '10']
    // the replay's progress: committed offsets of its group on cleaned-data
    const progress = async () => {
      const admin = new Admin(clientOptions(connectionOf(settings)))
      try {
        const [group] = await admin.listConsumerGroupOffsets({ groups: ['kpipe-replay-cleaned-app_version'] })
        return (group?.topics.find((t) => t.name === settings.TOPIC_CLEANED)?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.committedOffset)), 0)
      } finally {
        await admin.close()
      }
    }
    const victim = spawnKpipe(args, env)
    await waitFor(async () => (await progress()) >= 100, 60_000, 'a hundred events replayed')
    victim.kill('SIGKILL')
    expect((await exitOf(victim)).signal).toBe('SIGKILL')
    // killed halfway: some committed, not all
    const committedAtKill = copiesByOriginal(await readAll(settings, settings.TOPIC_LOGINS)).size
    expect(committedAtKill).toBe(await progress())
    expect(committedAtKill).toBeLessThan(COUNT)

    // Ctrl-C: the batch in flight is committed, the run stops cleanly, the next run continues
    const interrupted = spawnKpipe([...args, '--json'], env)
    await waitFor(async () => (await progress()) >= committedAtKill + 100, 60_000, 'a hundred more replayed')
    interrupted.kill('SIGINT')
    expect((await exitOf(interrupted)).code, interrupted.output()).toBe(0)
    const stoppedRun = JSON.parse(interrupted.output().split('\n').find((l) => l.startsWith('{'))!) as { sent: number; stopped: boolean }
    expect(stoppedRun.stopped).toBe(true)
    const committedAtStop = copiesByOriginal(await readAll(settings, settings.TOPIC_LOGINS)).size
    expect(committedAtStop).toBe(committedAtKill + stoppedRun.sent)
    expect(committedAtStop).toBe(await progress())
    expect(committedAtStop).toBeLessThan(COUNT)
    const rerun = runKpipe([...args, '--json'], env, 120_000)
    expect(rerun.code, rerun.stderr).toBe(0)
    const summary = JSON.parse(rerun.stdout) as { sent: number }
    expect(summary.sent).toBe(COUNT - committedAtStop)

    const inputs = await readAll(settings, settings.TOPIC_LOGINS)
    const copies = copiesByOriginal(inputs)
    expect(copies.size).toBe(COUNT)
    for (const [of, list] of copies) expect(list, of).toHaveLength(1)
    expect(inputs).toHaveLength(COUNT * 2)

    // through the processor with the version allowed: each original processed exactly once
    const widened = settingsOf({ ...env, ALLOWED_APP_VERSIONS: '2.2.0,2.3.0' })
    await processAll(widened, 'g-kill', 2 * COUNT)
    const processed = await readAll(settings, settings.TOPIC_PROCESSED)
    expect(processed).toHaveLength(COUNT)
    expect(new Set(processed.map((r) => `${header(r, 'source-partition')}/${header(r, 'source-offset')}`)).size).toBe(COUNT)
  }, 240_000)

  it('bad input: one line each, non-zero exit, nothing sent; without the source topic, error records go from their raw payload', async () => {
    const env = loginEnv({ MAX_MESSAGE_AGE: '0' })
    const settings = settingsOf(env)
    await createLoginTopics(settings)
    await produceRaw(settings, [event(1, '2.2.0'), event(2, '2.2.0'), '{"user_id":"u3"', event(4, '2.3.0')])
    await processAll(settings, 'g-bad', 4)
    const oneLine = (r: { code: number | null; stderr: string }, code: number, message: RegExp) => {
      expect(r.code, r.stderr).toBe(code)
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1)
      expect(r.stderr).toMatch(message)
    }
    oneLine(replay(env, ['--from', 'cleaned-data', '--reason', 'too_old']), 2, /unknown --reason "too_old": expected one of stale, app_version/)
    oneLine(replay(env, ['--from', 'processed-errors', '--error-type', 'bad']), 2, /unknown --error-type "bad"/)
    oneLine(replay(env, ['--from', 'cleaned-data', '--to', 'no-such-topic']), 2, /--to no-such-topic: no such topic/)
    oneLine(replay(env, ['--from', 'processed-errors', '--error-type', 'missing_fields']), 1, /empty selection: no record of processed-errors-\w+ of error type missing_fields \(1 records looked at\); nothing to replay/)
    oneLine(replay(env, ['--from', 'cleaned-data', '--since', '2026-01-01', '--until', '2026-01-02']), 1, /empty selection: .* written in the given time range/)

    // the source topic expires as a whole
    const admin = new Admin(clientOptions(connectionOf(settings)))
    try {
      await admin.deleteTopics({ topics: [settings.TOPIC_LOGINS] })
      await waitFor(async () => !(await admin.listTopics()).includes(settings.TOPIC_LOGINS), 30_000, 'the source topic deleted')
    } finally {
      await admin.close()
    }
    const target = `${settings.TOPIC_LOGINS}-again`
    await ensureTopics(connectionOf(settings), [{ name: target, partitions: 1, replicationFactor: 1 }])
    const dry = replay(env, ['--from', 'cleaned-data', '--to', target, '--dry-run'])
    expect(dry.stdout).toMatch(/2 unavailable/)
    expect(dry.stdout).toMatch(/cannot be replayed: cleaned-data holds pseudonymised events only/)
    oneLine(replay(env, ['--from', 'cleaned-data', '--to', target]), 1, /the originals of all 2 selected records are gone from their source topic \(retention\)/)
    expect(await readAll(settings, target)).toHaveLength(0)

    const fromRaw = replay(env, ['--from', 'processed-errors', '--to', target, '--json'])
    expect(fromRaw.code, fromRaw.stderr).toBe(0)
    expect(JSON.parse(fromRaw.stdout)).toMatchObject({ selected: 1, sent: 1, by_category: { invalid_json: { via_raw: 1 } } })
    const [copy] = await readAll(settings, target)
    expect(copy!.value!.toString()).toBe('{"user_id":"u3"')
    expect(header(copy!, 'replay-of')).toMatch(new RegExp(`^${settings.TOPIC_LOGINS}/\\d+/\\d+$`))
  }, 240_000)
})
