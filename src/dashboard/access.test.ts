import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lockPgliteDir } from '../shell/postgres/database.ts'
import { UserError } from '../shell/errors.ts'
import { assertBindAllowed, isLoopback, presentedToken, tokenMatches } from './access.ts'
import { startDashboard, type RunningDashboard } from './server.ts'
import { counts, createFeedTopics, openTestDatabase, sampleValue, silentLog, testProducer, testSettings, waitFor } from './dashboard.fixture.ts'

describe('who may bind where', () => {
  it.each(['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])('%s is loopback', (host) => {
    expect(isLoopback(host)).toBe(true)
    expect(() => assertBindAllowed(host, undefined)).not.toThrow()
  })

  it.each(['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'dashboard.example.com', '128.0.0.1'])('%s needs a token', (host) => {
    expect(isLoopback(host)).toBe(false)
    expect(() => assertBindAllowed(host, undefined)).toThrow(UserError)
    expect(() => assertBindAllowed(host, undefined)).toThrow(/KPIPE_DASHBOARD_TOKEN/)
    expect(() => assertBindAllowed(host, 'a-long-enough-secret')).not.toThrow()
  })
})

describe('tokens', () => {
  it('matches only the exact token', () => {
    expect(tokenMatches('a-long-enough-secret', 'a-long-enough-secret')).toBe(true)
    expect(tokenMatches('a-long-enough-secret', 'a-long-enough-secreT')).toBe(false)
    expect(tokenMatches('a-long-enough-secret', 'a-long')).toBe(false)
    expect(tokenMatches('a-long-enough-secret', '')).toBe(false)
    expect(tokenMatches('a-long-enough-secret', undefined)).toBe(false)
  })

  it('is read from the bearer header, the query or the page cookie', () => {
    expect(presentedToken({ authorization: 'Bearer abc' }, {})).toBe('abc')
    expect(presentedToken({ authorization: 'bearer  abc ' }, {})).toBe('abc')
    expect(presentedToken({ authorization: 'Basic abc' }, {})).toBeUndefined()
    expect(presentedToken({}, { token: 'q' })).toBe('q')
    expect(presentedToken({ cookie: 'a=1; kpipe_token=c%2Fd; b=2' }, {})).toBe('c/d')
    expect(presentedToken({}, {})).toBeUndefined()
  })
})

describe('a dashboard with a token', () => {
  const token = 'test-token-0123456789'
  let dashboard: RunningDashboard
  let port: string

  const settings = testSettings({ HOST: '0.0.0.0', KPIPE_DASHBOARD_TOKEN: token })

  beforeAll(async () => {
    dashboard = await startDashboard(settings, silentLog)
    port = new URL(dashboard.url).port
  })
  afterAll(async () => {
    await dashboard?.close()
  })

  const at = (path: string) => `http://127.0.0.1:${port}${path}`

  it('listens on every address and turns away requests without the token', async () => {
    expect(dashboard.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/$/)
    for (const path of ['/', '/api/summary', '/api/metrics?range=5m', '/api/events', '/metrics', '/app.js']) {
      const res = await fetch(at(path))
      expect(res.status, path).toBe(401)
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/)
    }
    const wrong = await fetch(at('/api/summary'), { headers: { authorization: 'Bearer not-the-token-at-all' } })
    expect(wrong.status).toBe(401)
  })

  it('lets the bearer token, ?token= and the cookie it sets through', async () => {
    expect((await fetch(at('/api/summary'), { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
    expect((await fetch(at(`/metrics?token=${token}`))).status).toBe(200)
    const page = await fetch(at(`/?token=${token}`))
    expect(page.status).toBe(200)
    const cookie = page.headers.get('set-cookie')
    expect(cookie).toMatch(/^kpipe_token=.+; Path=\/; HttpOnly; SameSite=Strict$/)
    const withCookie = await fetch(at('/api/summary'), { headers: { cookie: cookie!.split(';')[0]! } })
    expect(withCookie.status).toBe(200)
  })

  it('picks up the feed\'s topics when they are created after the start', async () => {
    const auth = { headers: { authorization: `Bearer ${token}` } }
    const status = async () => (await (await fetch(at('/api/status'), auth)).json()) as { feed: { reading: string[] } }
    expect((await status()).feed.reading).toEqual([])
    await createFeedTopics(settings)
    const producer = testProducer(settings)
    try {
      await waitFor(async () => (await status()).feed.reading.length === 4, 20_000, 'the feed reading the new topics')
      await producer.send({ messages: [{ topic: settings.TOPIC_SUMMARY, key: 'late', value: JSON.stringify({ instance_id: 'late', time: new Date().toISOString(), total: counts(1) }) }] })
      await waitFor(async () => ((await (await fetch(at('/api/summary'), auth)).json()) as { total: { received: number } }).total.received === 10, 15_000, 'the summary')
    } finally {
      await producer.close()
    }
  })

  it('keeps /healthz and /readyz open for probes', async () => {
    expect((await fetch(at('/healthz'))).status).toBe(200)
    const ready = await fetch(at('/readyz'))
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ status: 'ready' })
  })
})

describe('a dashboard sharing the database of its process (kpipe up)', () => {
  it('reads through the database it was given and leaves it open when it stops', async () => {
    const db = await openTestDatabase()
    try {
      const dashboard = await startDashboard(testSettings(), silentLog, { db })
      const ready = await fetch(new URL('/readyz', dashboard.url))
      expect(await ready.json()).toMatchObject({ checks: { database: { ok: true } } })
      await dashboard.close()
      expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    } finally {
      await db.close()
    }
  })
})

describe('a dashboard whose embedded database belongs to another process (sink started separately)', () => {
  it('serves live data only, says why, and reports the database not ready', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-dash-inuse-'))
    const release = lockPgliteDir(join(dataDir, 'pg'))
    const settings = testSettings({ DATABASE_URL: '', KPIPE_DATA_DIR: dataDir })
    await createFeedTopics(settings)
    const producer = testProducer(settings)
    const dashboard = await startDashboard(settings, silentLog)
    try {
      const host = `inuse-${process.pid}`
      await waitFor(async () => ((await (await fetch(new URL('/api/status', dashboard.url))).json()) as { feed: { reading: string[] } }).feed.reading.length === 4, 20_000, 'the feed')
      await producer.send({ messages: [{ topic: settings.TOPIC_PERFORMANCE, key: host, value: sampleValue(host, Date.now()) }] })
      const body = await waitFor(async () => {
        const b = (await (await fetch(new URL(`/api/metrics?range=1h&host=${host}`, dashboard.url))).json()) as { sources: { live: number }; history_unavailable: string | null }
        return b.sources.live === 1 ? b : undefined
      }, 15_000, 'the live sample')
      expect(body.history_unavailable).toMatch(/in use by process \d+.*DATABASE_URL/)
      const ready = await fetch(new URL('/readyz', dashboard.url))
      expect(ready.status).toBe(503)
      expect(await ready.json()).toMatchObject({ checks: { kafka: { ok: true }, database: { ok: false, error: expect.stringContaining('in use') } } })
    } finally {
      await dashboard.close()
      await producer.close()
      release()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
