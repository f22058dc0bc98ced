import { describe, expect, it } from 'vitest'
import Fastify from 'fastify'
import { createLogger } from '../shell/log.ts'
import { waitFor } from '../../test/support/cli.ts'
import { auditLogins } from '../logins/audit/audit-logins.ts'
import { runProcessor } from '../logins/process/run-processor.ts'
import { connectionOf, createLoginTopics, loginEnv, produceRaw, settingsOf } from '../logins/logins.fixture.ts'
import { replayBacklogRoutes, type ReplayBacklog } from './replay-backlog.ts'

describe('/api/replay-backlog', () => {
  it('counts what is parked by error type and reason, with the replay command for each', async () => {
    const settings = settingsOf(loginEnv({ MAX_MESSAGE_AGE: '0' }))
    const app = Fastify()
    await app.register(replayBacklogRoutes(settings, connectionOf(settings)))

    // before anything exists: nothing parked, no failure
    const empty = await app.inject({ method: 'GET', url: '/api/replay-backlog' })
    expect(empty.statusCode, empty.body).toBe(200)
    expect((empty.json() as ReplayBacklog).topics.map((t) => t.records)).toEqual([0, 0])

    await createLoginTopics(settings)
    const event = (i: number, version: string) => JSON.stringify({ user_id: `u${i}`, app_version: version, device_type: 'ios', ip: '10.0.0.1', locale: 'RU', device_id: `d${i}`, timestamp: String(Math.floor(Date.now() / 1000)) })
    await produceRaw(settings, [event(1, '2.2.0'), event(2, '2.2.0'), event(3, '2.3.0'), '{"user', 'nope', '{"user_id":"u6"}'])
    const stop = new AbortController()
    const running = runProcessor({ settings, log: createLogger('silent'), groupId: 'g-backlog', from: 'earliest', exactlyOnce: false, instanceId: 'backlog', signal: stop.signal })
    try {
      await waitFor(async () => (await auditLogins(connectionOf(settings), settings)).missing === 0, 60_000, 'the inputs processed')
    } finally {
      stop.abort()
      await running
    }

    // a fresh app: the first one's answer is cached for 15 s
    const fresh = Fastify()
    await fresh.register(replayBacklogRoutes(settings, connectionOf(settings)))
    const response = await fresh.inject({ method: 'GET', url: '/api/replay-backlog' })
    expect(response.statusCode, response.body).toBe(200)
    const backlog = response.json() as ReplayBacklog
    const [errors, cleaned] = backlog.topics
    expect(errors).toMatchObject({ topic: settings.TOPIC_ERRORS, role: 'errors', records: 3 })
    expect(errors!.categories.map((c) => [c.category, c.count])).toEqual([['invalid_json', 2], ['missing_fields', 1]])
    expect(errors!.categories[0]!.command).toBe(`kpipe logins replay --from ${settings.TOPIC_ERRORS} --error-type invalid_json`)
    expect(errors!.categories[0]!.note).toMatch(/re-sends the same bytes/)
    expect(cleaned).toMatchObject({ topic: settings.TOPIC_CLEANED, role: 'cleaned', records: 2 })
    expect(cleaned!.categories).toEqual([expect.objectContaining({ category: 'app_version', count: 2, command: `kpipe logins replay --from ${settings.TOPIC_CLEANED} --reason app_version` })])
    expect(Date.parse(cleaned!.categories[0]!.newest)).toBeGreaterThan(Date.now() - 120_000)
    await Promise.all([app.close(), fresh.close()])
  })
})
