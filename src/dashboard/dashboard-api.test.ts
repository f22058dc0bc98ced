import { Admin } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientOptions, kafkaConnection } from '../shell/kafka/connection.ts'
import type { KpipeProducer } from '../shell/kafka/producer.ts'
import type { Database } from '../shell/postgres/database.ts'
import type { Settings } from '../shell/settings.ts'
import { startDashboard, type RunningDashboard } from './server.ts'
import { commitGroupOffset, counts, createFeedTopics, insertRows, openTestDatabase, sampleValue, silentLog, testProducer, testSettings, unique, waitFor, type Row } from './dashboard.fixture.ts'

/**
 * The dashboard's API against the run's real broker and PostgreSQL, with known data: history
 * rows in the performance table, records in the feed's topics written before and after start.
 */
let settings: Settings
let db: Database
let producer: KpipeProducer
let dashboard: RunningDashboard
let base: string
const host = unique('api-host')
const now = Date.now()

const get = async (path: string, init?: RequestInit) => {
  const res = await fetch(new URL(path, base), init)
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // /metrics and the page are not JSON
  }
  // the tests read the JSON by the documented field names
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: res.status, headers: res.headers, body: body as Record<string, any> }
}

/** 3 min of one sample a second: cpu 25 %, bytes_sent +1000 B/s, a counter reset 60 s ago; and older rows. */
function knownRows(): Row[] {
  const rows: Row[] = []
  const start = Math.floor(now / 1000) * 1000 - 180_000
  for (let s = 0; s < 180; s++) {
    const reset = s >= 120
    rows.push({
      host, time: new Date(start + s * 1000), cpu_usage: 25, memory_usage: 50, disk_usage: 70,
      cpu_interrupts: 1_000_000 + s * 500, bytes_sent: reset ? (s - 120) * 1000 : 5_000_000 + s * 1000, bytes_received: 9_000_000 + s * 2000,
    })
  }
  // 40 min ago: in the 1 h range only; 3 h ago: in the 24 h range only
  for (const [ago, cpu] of [[40 * 60_000, 80], [3 * 3600_000, 90]] as const) {
    for (let s = 0; s < 20; s++) {
      rows.push({ host, time: new Date(now - ago + s * 1000), cpu_usage: cpu, memory_usage: 50, disk_usage: 70, cpu_interrupts: s, bytes_sent: s, bytes_received: s })
    }
  }
  return rows
}

beforeAll(async () => {
  settings = testSettings()
  db = await openTestDatabase()
  await insertRows(db, knownRows())
  await createFeedTopics(settings)
  producer = testProducer(settings)
  // Written before the dashboard starts: the feed must replay them so the page has data at once.
  await producer.send({
    messages: [
      { topic: settings.TOPIC_SUMMARY, key: 'proc-a', value: JSON.stringify({ instance_id: 'proc-a', time: new Date(now - 5000).toISOString(), window_start: new Date(now - 15000).toISOString(), window_end: new Date(now - 5000).toISOString(), total: counts(1), window: counts(1) }) },
      { topic: settings.TOPIC_SUMMARY, key: 'proc-b', value: JSON.stringify({ instance_id: 'proc-b', time: new Date(now - 4000).toISOString(), total: counts(2), window: counts(1) }) },
      { topic: settings.TOPIC_SUMMARY, key: 'proc-a', value: '{"instance_id": broken' },
      {
        topic: settings.TOPIC_METRICS, key: 'proc-a', value: JSON.stringify({
          mode: 'interval', instance_id: 'proc-a', time: new Date().toISOString(), interval_ms: 1000, messages_in: 120, throughput_per_s: 120,
          outputs: { processed: 100, filtered: 15, errors: 5 }, latency_ms: { p50: 2, p95: 6, p99: 9.5, max: 20 }, event_age_ms: { p50: 3, p95: 7, p99: 10, max: 21 },
          consumer_lag: [{ topic: 'user-login', partition: 0, lag: 42 }],
        }),
      },
      { topic: settings.TOPIC_METRICS, key: 'proc-a', value: JSON.stringify({ mode: 'per-message', message_id: 'm1', processing_time: 0.4, topic: 'user-login', timestamp: 1 }) },
      {
        topic: settings.TOPIC_ERRORS, key: 'u-7', value: JSON.stringify({
          error_type: 'invalid_field', error: 'ip is not an IPv4 or IPv6 address', fields: ['ip'], user_id: 'u-7',
          source: { topic: 'user-login', partition: 0, offset: '17' }, raw: '{"ip":"999.1.1.1","device_id":"593-47-5928"}', raw_encoding: 'utf8', time: new Date().toISOString(),
        }),
      },
    ],
  })
  dashboard = await startDashboard(settings, silentLog)
  base = dashboard.url
}, 90_000)

afterAll(async () => {
  await dashboard?.close()
  await producer?.close()
  await db?.query('DELETE FROM performance WHERE host = $1', [host])
  await db?.close()
})

describe('health', () => {
  it('/healthz answers while the process runs', async () => {
    const r = await get('/healthz')
    expect(r.status).toBe(200)
    expect(r.body).toEqual({ status: 'ok' })
  })

  it('/readyz reports the broker and the database reachable', async () => {
    const r = await get('/readyz')
    expect(r.body).toMatchObject({ status: 'ready', checks: { kafka: { ok: true }, database: { ok: true } } })
    expect(r.status).toBe(200)
  })
})

describe('login pipeline API (fed from Kafka)', () => {
  it('/api/summary sums the latest summary of every processor instance, replayed from before the start', async () => {
    const summary = await waitFor(async () => {
      const r = await get('/api/summary')
      return r.body.instances?.length === 2 ? r.body : undefined
    }, 20_000, 'both summaries')
    expect(summary.instances.map((i: { instance_id: string }) => i.instance_id)).toEqual(['proc-a', 'proc-b'])
    expect(summary.total).toEqual({
      received: 30, processed: 21, filtered: { stale: 3, app_version: 3 }, errors: { invalid_json: 3, missing_fields: 0, invalid_field: 0 },
      device_types: { android: 12, ios: 9 }, locales: { RU: 6, US: 15 }, app_versions: { '2.3.0': 27 },
    })
    expect(summary.window.received).toBe(20)
  })

  it('/api/processing has the interval metrics and counts per-message records without charting them', async () => {
    const p = await waitFor(async () => {
      const r = await get('/api/processing')
      return r.body.per_message_records === 1 ? r.body : undefined
    }, 20_000, 'the metrics records')
    expect(p.throughput_per_s).toBe(120)
    expect(p.latency_ms.p99).toBe(9.5)
    expect(p.outputs).toEqual({ processed: 100, filtered: 15, errors: 5 })
    expect(p.consumer_lag).toEqual([{ topic: 'user-login', partition: 0, lag: 42 }])
    expect(p.history.throughput_per_s).toEqual([120])
  })

  it('/api/errors lists the latest errors without the raw payload', async () => {
    const r = await waitFor(async () => {
      const res = await get('/api/errors')
      return res.body.errors?.length === 1 ? res : undefined
    }, 20_000, 'the error record')
    expect(r.body.errors[0]).toMatchObject({ error_type: 'invalid_field', fields: ['ip'], user_id: 'u-7', source: { topic: 'user-login', partition: 0, offset: '17' } })
    expect(JSON.stringify(r.body)).not.toContain('593-47-5928')
  })

  it('counts the record it could not read instead of failing', async () => {
    const status = await waitFor(async () => {
      const r = await get('/api/status')
      return r.body.feed.unreadable >= 1 ? r.body : undefined
    }, 20_000, 'the broken record counted')
    expect(status.feed.reading.sort()).toEqual([settings.TOPIC_ERRORS, settings.TOPIC_METRICS, settings.TOPIC_PERFORMANCE, settings.TOPIC_SUMMARY].sort())
    const metrics = await get('/metrics')
    expect(metrics.body).toMatch(new RegExp(`kpipe_dashboard_unreadable_records_total\\{topic="${settings.TOPIC_SUMMARY}"\\} 1`))
  })

  it('a new summary replaces its instance\'s previous one, live', async () => {
    await producer.send({ messages: [{ topic: settings.TOPIC_SUMMARY, key: 'proc-a', value: JSON.stringify({ instance_id: 'proc-a', time: new Date().toISOString(), total: counts(10), window: counts(1) }) }] })
    await waitFor(async () => (await get('/api/summary')).body.total.received === 120, 10_000, 'proc-a at 100 + proc-b at 20')
  })
})

describe('host metrics API (PostgreSQL history, Kafka live)', () => {
  it('/api/metrics?range=5m gives the rows of the host with rates from the counters, none across the reset', async () => {
    const r = await get(`/api/metrics?range=5m&host=${encodeURIComponent(host)}`)
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ host, range: '5m', bucket_ms: null, sources: { database: 180 } })
    const p = r.body.points
    expect(p.time).toHaveLength(180)
    expect(new Set(p.cpu_usage)).toEqual(new Set([25]))
    // 1000 B/s everywhere but the first point (nothing before it) and the reset (no rate claimed)
    expect(p.bytes_sent_per_s.filter((v: number | null) => v === null)).toHaveLength(2)
    expect(p.bytes_sent_per_s.filter((v: number | null) => v === 1000)).toHaveLength(178)
    expect(p.bytes_received_per_s.slice(1).every((v: number) => v === 2000)).toBe(true)
    expect(p.interrupts_per_s.slice(1).every((v: number) => v === 500)).toBe(true)
  })

  it('range=1h buckets by 5 s and reaches the rows of 40 minutes ago; 24h by a minute and 3 hours back', async () => {
    const hour = (await get(`/api/metrics?range=1h&host=${encodeURIComponent(host)}`)).body
    expect(hour.bucket_ms).toBe(5000)
    expect(hour.sources.database).toBe(200)
    expect(hour.points.cpu_usage).toContain(80)
    expect(hour.points.cpu_usage).not.toContain(90)
    expect(hour.points.time.length).toBeLessThan(100)
    expect(hour.points.time.every((t: number, i: number, all: number[]) => i === 0 || t > all[i - 1]!)).toBe(true)
    const day = (await get(`/api/metrics?range=24h&host=${encodeURIComponent(host)}`)).body
    expect(day.bucket_ms).toBe(60_000)
    // 24 h is read as 10 s aggregates: 3 min + 20 s + 20 s of rows
    expect(day.sources.database).toBeGreaterThanOrEqual(22)
    expect(day.sources.database).toBeLessThanOrEqual(25)
    expect(day.points.cpu_usage).toContain(90)
    expect(day.points.cpu_usage).toContain(80)
    expect(day.points.time.length).toBeLessThan(20)
    // exact rates inside the 3 minutes, none across the hours between the blocks, none negative at the reset
    const received = day.points.bytes_received_per_s.filter((v: number | null) => v !== null)
    expect(received.length).toBeGreaterThan(0)
    expect(received.filter((v: number) => v !== 2000 && v !== 1)).toEqual([])
    expect(day.points.bytes_sent_per_s.every((v: number | null) => v === null || v >= 0)).toBe(true)
  })

  it('rejects an unknown range and keeps user input out of SQL', async () => {
    const bad = await get('/api/metrics?range=7d')
    expect(bad.status).toBe(400)
    expect(bad.body.error).toMatch(/5m, 1h, 24h/)
    const injection = await get(`/api/metrics?range=5m&host=${encodeURIComponent(`${host}' OR '1'='1`)}`)
    expect(injection.status).toBe(200)
    expect(injection.body.sources.database).toBe(0)
    const drop = await get(`/api/metrics?range=5m&host=${encodeURIComponent("x'); DROP TABLE performance; --")}`)
    expect(drop.status).toBe(200)
    expect((await db.query('SELECT count(*)::int AS n FROM performance WHERE host = $1', [host])).rows[0]).toEqual({ n: 220 })
  })

  it('a sample produced to the topic reaches /api/hosts, /api/metrics and the SSE stream in under a second', async () => {
    const liveHost = unique('live-host')
    const controller = new AbortController()
    const res = await fetch(new URL('/api/events', base), { signal: controller.signal })
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const reader = res.body!.getReader()
    let received = ''
    const reading = (async () => {
      const decoder = new TextDecoder()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        received += decoder.decode(value, { stream: true })
      }
    })().catch(() => {})
    try {
      await waitFor(() => received.includes('event: hello'), 5000, 'the stream to open')
      const first = Date.now()
      await producer.send({ messages: [{ topic: settings.TOPIC_PERFORMANCE, key: liveHost, value: sampleValue(liveHost, first) }] })
      const sentAt = Date.now()
      await waitFor(() => received.includes(liveHost), 5000, 'the sample on the stream')
      const latency = Date.now() - sentAt
      expect(latency).toBeLessThan(1000)
      await producer.send({ messages: [{ topic: settings.TOPIC_PERFORMANCE, key: liveHost, value: sampleValue(liveHost, first + 500) }] })
      await waitFor(() => received.split(liveHost).length > 2, 5000, 'the second sample on the stream')
      const events = received.split('\n\n').filter((e) => e.startsWith('event: sample') && e.includes(liveHost)).map((e) => JSON.parse(e.split('\ndata: ')[1]!))
      expect(events[1]).toMatchObject({ host: liveHost, point: { time: first + 500, cpu_usage: 33.3, bytes_sent_per_s: 2000, bytes_received_per_s: 3000 } })
    } finally {
      controller.abort()
      await reading
    }
    const hosts = (await get('/api/hosts')).body.hosts.map((h: { host: string }) => h.host)
    expect(hosts).toContain(liveHost)
    expect(hosts).toContain(host)
    const live = (await get(`/api/metrics?range=5m&host=${encodeURIComponent(liveHost)}`)).body
    expect(live.sources).toEqual({ database: 0, live: 2 })
    expect(live.points.cpu_usage).toEqual([33.3, 33.3])
  })
})

describe('Kafka panel and Prometheus', () => {
  it('/api/kafka lists the topics with end offsets and a consumer group with its lag', async () => {
    const group = unique('dash-lag-group')
    await commitGroupOffset(settings, group, settings.TOPIC_ERRORS, 0n)
    const k = await waitFor(async () => {
      const body = (await get('/api/kafka')).body
      return body.groups?.some((g: { group_id: string }) => g.group_id === group) ? body : undefined
    }, 15_000, 'the group in /api/kafka')
    const errorsTopic = k.topics.find((t: { name: string }) => t.name === settings.TOPIC_ERRORS)
    expect(errorsTopic).toEqual({ name: settings.TOPIC_ERRORS, partitions: [{ partition: 0, leader: expect.any(Number), start_offset: 0, end_offset: 1 }], records: 1 })
    const g = k.groups.find((x: { group_id: string }) => x.group_id === group)
    expect(g).toMatchObject({ lag: 1, partitions: [{ topic: settings.TOPIC_ERRORS, partition: 0, committed: 0, end_offset: 1, lag: 1 }] })
    // the dashboards' own feed groups are not shown
    expect(k.groups.some((x: { group_id: string }) => x.group_id === dashboard.feed.groupId)).toBe(false)
  })

  it('/metrics serves the kpipe_ series, with the records the feed read', async () => {
    const r = await get('/metrics')
    expect(r.status).toBe(200)
    expect(r.headers.get('content-type')).toMatch(/text\/plain/)
    expect(r.body).toMatch(new RegExp(`kpipe_records_in_total\\{part="dashboard",topic="${settings.TOPIC_SUMMARY}"\\} [1-9]`))
    expect(r.body).toContain('kpipe_process_cpu_seconds_total')
  })

  it('serves the page and its assets', async () => {
    const page = await get('/')
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'")
    expect(String(page.body)).toContain('<script src="/app.js"')
    for (const asset of ['/app.js', '/style.css', '/vendor/uPlot.iife.min.js', '/vendor/uPlot.min.css', '/favicon.svg']) {
      expect((await get(asset)).status, asset).toBe(200)
    }
  })
})

describe('shutdown', () => {
  it('closes the event streams and deletes the feed\'s consumer group', async () => {
    const res = await fetch(new URL('/api/events', base))
    const reader = res.body!.getReader()
    const admin = new Admin(clientOptions(kafkaConnection(settings), 'dashboard-test-admin'))
    try {
      expect([...(await admin.listGroups()).keys()]).toContain(dashboard.feed.groupId)
      await dashboard.close()
      // the stream ends instead of holding the server open
      for (;;) if ((await reader.read()).done) break
      await waitFor(async () => ![...(await admin.listGroups()).keys()].includes(dashboard.feed.groupId), 10_000, 'the feed group deleted')
    } finally {
      await admin.close()
    }
  })
})
