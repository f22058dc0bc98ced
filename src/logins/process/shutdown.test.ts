import { describe, expect, it } from 'vitest'
import { exitOf, runKpipe, spawnKpipe, waitFor } from '../../../test/support/cli.ts'
import { auditLogins } from '../audit/audit-logins.ts'
import { committedOffsets, connectionOf, endOffsetSum, generateLogins, HASH_KEY, header, loginEnv, readAll } from '../logins.fixture.ts'
import { freePort } from '../../shell/broker/local-broker.ts'

describe('SIGTERM', () => {
  it('finishes the batch in flight, commits, publishes a final summary and exits 0 within 10 s', async () => {
    const env = loginEnv()
    const settings = await generateLogins(env, 8000)
    const group = `g-${settings.TOPIC_LOGINS}`
    const child = spawnKpipe(['logins', 'process', '--group', group, '--instance-id', 'term-test', '--batch-size', '200'], env)
    await waitFor(async () => (await endOffsetSum(settings, [settings.TOPIC_PROCESSED, settings.TOPIC_CLEANED, settings.TOPIC_ERRORS])) >= 1000, 30_000, 'the first outputs')
    const sent = Date.now()
    child.kill('SIGTERM')
    const exit = await exitOf(child)
    expect(exit.code).toBe(0)
    expect(Date.now() - sent).toBeLessThan(10_000)

    // everything written is committed: the committed offset of each partition is one past the
    // highest input offset that has an output
    const highest = [-1, -1, -1]
    for (const topic of [settings.TOPIC_PROCESSED, settings.TOPIC_CLEANED, settings.TOPIC_ERRORS]) {
      for (const r of await readAll(settings, topic)) {
        const p = Number(header(r, 'source-partition'))
        highest[p] = Math.max(highest[p]!, Number(header(r, 'source-offset')))
      }
    }
    const committed = await committedOffsets(settings, group)
    expect(committed.map(Number)).toEqual(highest.map((h) => (h === -1 ? -1 : h + 1)))
    const audit = await auditLogins(connectionOf(settings), settings)
    expect(audit.duplicated).toBe(0)

    const summaries = await readAll(settings, settings.TOPIC_SUMMARY)
    const last = JSON.parse(summaries[summaries.length - 1]!.value!.toString()) as { instance_id: string; total: { received: number }; final?: boolean }
    expect(last.instance_id).toBe('term-test')
    // marked as the last: the dashboard counts this instance out of the live totals
    expect(last.final).toBe(true)
    expect(summaries.slice(0, -1).map((s) => (JSON.parse(s.value!.toString()) as { final?: boolean }).final)).not.toContain(true)
    expect(last.total.received).toBe(committed.reduce((a, b) => a + Math.max(0, Number(b)), 0))

    // kpipe tail shows it; kpipe audit fails: most inputs were never processed
    const tail = runKpipe(['tail', settings.TOPIC_SUMMARY, '--from-beginning', '--count', '1', '--json'], env)
    expect(tail.code).toBe(0)
    expect(JSON.parse(tail.stdout)).toMatchObject({ topic: settings.TOPIC_SUMMARY, key: 'term-test', value: { instance_id: 'term-test' } })
    const failed = runKpipe(['audit'], env)
    expect(failed.code).toBe(1)
    expect(failed.stdout).toContain(`${settings.TOPIC_LOGINS}: 8000 inputs, ${8000 - last.total.received} missing, 0 duplicated`)
  })
})

describe('while Kafka is unavailable', () => {
  it('each retry is one warning line with its cause (the secret kept out), and a stop then is clean: exit 0', async () => {
    const env = { ...loginEnv(), KAFKA_BROKERS: `127.0.0.1:${await freePort()}`, LOG_LEVEL: 'info' }
    const child = spawnKpipe(['logins', 'process'], env)
    await waitFor(() => /Kafka unavailable[^\n]*\n[^]*Kafka unavailable/.test(child.output()) || child.exitCode !== null, 60_000, 'two retry warnings')
    child.kill('SIGTERM')
    const exit = await exitOf(child)
    const output = child.output()
    expect(exit, output).toEqual({ code: 0, signal: null })
    const warnings = output.split('\n').filter((line) => line.includes('Kafka unavailable'))
    expect(warnings.length).toBeGreaterThanOrEqual(2)
    for (const line of warnings) {
      const entry = JSON.parse(line) as { msg: string; err: { message: string; stack?: string } }
      expect(entry.msg).toMatch(/Kafka unavailable \(.*connect.*\); retrying in/)
      expect(entry.err.message).toContain('ECONNREFUSED')
      expect(entry.err.stack).toBeUndefined()
    }
    expect(output).not.toMatch(/\n\s+at /)
    expect(output).not.toContain(HASH_KEY)
    expect(output).toContain('stopped while waiting for Kafka')
  })
})

describe('bad settings', () => {
  it('MAX_MESSAGE_AGE=abc: one line naming the setting, exit 2', () => {
    const r = runKpipe(['logins', 'process'], { ...loginEnv(), MAX_MESSAGE_AGE: 'abc' })
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain('MAX_MESSAGE_AGE="abc"')
    expect(r.stderr).toContain('expected a whole number of seconds')
  })

  it('no KPIPE_HASH_KEY: one line saying what to do, exit 2, before connecting anywhere', () => {
    const r = runKpipe(['logins', 'process'], { ...loginEnv(), KPIPE_HASH_KEY: '', KAFKA_BROKERS: '127.0.0.1:1' }, 15_000)
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/KPIPE_HASH_KEY is not set/)
  })

  it('a hash key that is too short is refused without echoing it', () => {
    const r = runKpipe(['logins', 'process'], { ...loginEnv(), KPIPE_HASH_KEY: 'short-secret' })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('KPIPE_HASH_KEY')
    expect(r.stderr).not.toContain('short-secret')
  })
})

describe('SIGINT while Kafka is away', () => {
  it('during the start-up wait for Kafka: stops at once, exit 0', async () => {
    const child = spawnKpipe(['logins', 'process'], { ...loginEnv(), KAFKA_BROKERS: '127.0.0.1:1', LOG_LEVEL: 'info' })
    try {
      await waitFor(() => /create topics: Kafka unavailable \(.*\); retrying in/.test(child.output()), 30_000, 'the start-up wait for Kafka')
      const sent = Date.now()
      child.kill('SIGINT')
      const exit = await exitOf(child)
      expect(exit.code, child.output()).toBe(0)
      expect(Date.now() - sent).toBeLessThan(10_000)
      expect(child.output()).toContain('stopped while waiting for Kafka')
    } finally {
      child.kill('SIGKILL')
    }
  })
})
