import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import type { KpipeProducer } from '../shell/kafka/producer.ts'
import type { OutputRecord } from '../shell/kafka/records.ts'
import type { Database } from '../shell/postgres/database.ts'
import type { Settings } from '../shell/settings.ts'
import { startDashboard, type RunningDashboard } from './server.ts'
import { commitGroupOffset, counts, createFeedTopics, insertRows, openTestDatabase, sampleValue, silentLog, testProducer, testSettings, waitFor, type Row } from './dashboard.fixture.ts'

/**
 * The page in Debian's Chromium, driven by playwright-core, against a dashboard on the run's
 * real broker and PostgreSQL: no console error, live samples drawn within seconds, the range
 * switch, the empty state, both colour schemes. Screenshots go to KPIPE_SCREENSHOT_DIR and are
 * kept there; without it, to a temp dir removed at the end (nothing is left behind).
 */
const CHROMIUM = '/usr/bin/chromium'
const host = `web-${Math.random().toString(16).slice(2, 6)}`
const keptScreenshots = process.env.KPIPE_SCREENSHOT_DIR
const screenshotDir = keptScreenshots ?? mkdtempSync(join(tmpdir(), 'kpipe-screens-'))

let settings: Settings
let db: Database
let producer: KpipeProducer
let dashboard: RunningDashboard
let context: BrowserContext
let page: Page
let userDataDir: string
const problems: string[] = []
let live: NodeJS.Timeout | undefined
let liveStopped = false
let liveProducer: KpipeProducer

/**
 * A plausible machine: a CPU wave, slow memory drift, traffic that varies; its counters only
 * ever grow, so history and live samples continue each other.
 */
class Machine {
  sent = 8e9
  received = 3e10
  interrupts = 4e8
  constructor(readonly start: number) {}

  /** the sample at `t`, `stepS` seconds after the previous one */
  at(t: number, stepS: number) {
    const x = (t - this.start) / 3600_000
    this.sent += stepS * (120_000 + 80_000 * Math.sin(x * 5) + 40_000 * Math.abs(Math.sin(x * 37)))
    this.received += stepS * (900_000 + 500_000 * Math.sin(x * 3 + 1) + 200_000 * Math.abs(Math.cos(x * 23)))
    this.interrupts += stepS * (9000 + 3000 * Math.sin(x * 7))
    const round = (v: number) => Math.round(v * 100) / 100
    return {
      cpu_usage: round(28 + 18 * Math.sin(x * 4) + 9 * Math.sin(x * 31) ** 2 + 4 * Math.abs(Math.sin(t / 1700))),
      memory_usage: round(52 + 6 * Math.sin(x * 1.3) + x),
      disk_usage: round(57.1 + x * 0.1),
      cpu_interrupts: Math.round(this.interrupts),
      bytes_sent: Math.round(this.sent),
      bytes_received: Math.round(this.received),
    }
  }
}

let machine: Machine

/** Two hours of history: one row per 10 s, and per second over the last 5 minutes. */
function history(now: number): Row[] {
  machine = new Machine(now - 2 * 3600_000)
  const rows: Row[] = []
  let previous = machine.start - 10_000
  for (let t = machine.start; t < now - 1000; t += t < now - 300_000 ? 10_000 : 1000) {
    rows.push({ host, time: new Date(t), ...machine.at(t, (t - previous) / 1000) })
    previous = t
  }
  lastHistory = previous
  return rows
}

let lastHistory = 0
/** seconds before now, (from, to], in which no processor metrics were published */
const PROCESSING_HOLE = [60, 90] as const

function loginRecords(now: number): OutputRecord[] {
  const records: OutputRecord[] = []
  for (let s = 180; s >= 0; s--) {
    // no processor ran for these 30 s: the throughput line must break there
    if (s > PROCESSING_HOLE[0] && s <= PROCESSING_HOLE[1]) continue
    for (const [instance, base] of [['processor-1', 410], ['processor-2', 380]] as const) {
      const rate = base + 60 * Math.sin(s / 20) + 25 * Math.sin(s / 3)
      records.push({
        topic: settings.TOPIC_METRICS, key: instance, value: JSON.stringify({
          mode: 'interval', instance_id: instance, time: new Date(now - s * 1000).toISOString(), interval_ms: 1000, messages_in: Math.round(rate), throughput_per_s: rate,
          outputs: { processed: Math.round(rate * 0.9), filtered: Math.round(rate * 0.07), errors: Math.round(rate * 0.03) },
          latency_ms: { p50: 3.1, p95: 7.4, p99: 11 + 4 * Math.sin(s / 9) ** 2, max: 25 }, event_age_ms: { p50: 5, p95: 9, p99: 14, max: 30 },
          consumer_lag: [{ topic: 'user-login', partition: instance === 'processor-1' ? 0 : 1, lag: 12 }],
        }),
      })
    }
  }
  const total = (n: number) => ({
    ...counts(n),
    received: 100 * n, processed: 90 * n, filtered: { stale: 4 * n, app_version: 3 * n }, errors: { invalid_json: n, missing_fields: n, invalid_field: n },
    device_types: { android: 52 * n, ios: 38 * n, web: 10 * n },
    locales: { US: 21 * n, RU: 14 * n, DE: 12 * n, BR: 11 * n, IN: 10 * n, FR: 9 * n, JP: 8 * n, GB: 15 * n },
  })
  records.push(
    { topic: settings.TOPIC_SUMMARY, key: 'processor-1', value: JSON.stringify({ instance_id: 'processor-1', time: new Date(now).toISOString(), total: total(700), window: total(40) }) },
    { topic: settings.TOPIC_SUMMARY, key: 'processor-2', value: JSON.stringify({ instance_id: 'processor-2', time: new Date(now).toISOString(), total: total(650), window: total(38) }) },
  )
  const errors = [
    ['invalid_json', 'not a JSON object', []],
    ['missing_fields', 'missing or empty: device_id, locale', ['device_id', 'locale']],
    ['invalid_field', 'ip is not an IPv4 or IPv6 address: "999.10.2.1"', ['ip']],
    ['invalid_field', 'timestamp is not epoch seconds', ['timestamp']],
    ['missing_fields', 'missing or empty: app_version', ['app_version']],
  ] as const
  errors.forEach(([type, error, fields], i) => {
    records.push({
      topic: settings.TOPIC_ERRORS, key: `u-${i}`, value: JSON.stringify({
        error_type: type, error, fields, user_id: type === 'invalid_json' ? null : `424cdd21-063a-43a7-b91b-7ca1a833af${i}e`,
        source: { topic: 'user-login', partition: i % 2, offset: String(18_340 + i * 97) }, raw: '{}', raw_encoding: 'utf8', time: new Date(now - (5 - i) * 7000).toISOString(),
      }),
    })
  })
  return records
}

const chartData = (id: string) =>
  page.$eval(`#chart-${id}`, (el) => ({ points: Number((el as HTMLElement).dataset.points), first: Number((el as HTMLElement).dataset.first), last: Number((el as HTMLElement).dataset.last) }))

beforeAll(async () => {
  settings = testSettings()
  db = await openTestDatabase()
  await insertRows(db, history(Date.now()))
  await createFeedTopics(settings)
  producer = testProducer(settings)
  dashboard = await startDashboard(settings, silentLog)
  // Live samples, as the collector sends them every 500 ms, continuing the history: from a
  // producer of their own, one send at a time (@platformatic/kafka 1.x's idempotent producer
  // loses its sequence numbers when sends overlap, and then refuses every later one).
  liveProducer = testProducer(settings)
  let previous = lastHistory
  const sendSample = async () => {
    const t = Date.now()
    const values = machine.at(t, (t - previous) / 1000)
    previous = t
    await liveProducer.send({ messages: [{ topic: settings.TOPIC_PERFORMANCE, key: host, value: sampleValue(host, t, values) }] })
  }
  const tick = () => {
    const started = Date.now()
    sendSample().then(
      () => {
        if (!liveStopped) live = setTimeout(tick, Math.max(0, 500 - (Date.now() - started)))
      },
      (e: unknown) => problems.push(`live send failed: ${String(e)} ${String((e as { errors?: unknown[] }).errors?.map(String))}`),
    )
  }
  tick()
  userDataDir = mkdtempSync(join(tmpdir(), 'kpipe-chromium-'))
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1440, height: 900 },
    colorScheme: 'light',
  })
  page = context.pages()[0] ?? (await context.newPage())
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()} (${m.location().url})`)
  })
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`)
  })
}, 90_000)

afterAll(async () => {
  liveStopped = true
  if (live) clearTimeout(live)
  await context?.close()
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true })
  await dashboard?.close()
  await producer?.close()
  await liveProducer?.close()
  await db?.query('DELETE FROM performance WHERE host = $1', [host])
  await db?.close()
  if (keptScreenshots) console.log(`screenshots in ${keptScreenshots}`)
  else rmSync(screenshotDir, { recursive: true, force: true })
})

it('loads without a console error, shows the login empty state, then fills everything live', async () => {
  await page.goto(dashboard.url)
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 })
  // the run's other tests may have hosts of their own in the shared table: pick ours
  await waitFor(() => page.$eval('#host-select', (s, h) => [...(s as HTMLSelectElement).options].some((o) => o.value === h), host), 10_000, 'our host in the selector')
  await page.selectOption('#host-select', host)
  await waitFor(async () => (await chartData('cpu')).points > 200, 10_000, 'the 5 min history drawn')
  expect(await page.isVisible('#logins-empty')).toBe(true)
  expect(await page.textContent('#logins-empty')).toContain('kpipe logins process')
  expect(await page.isVisible('#hosts-empty')).toBe(false)

  await producer.send({ messages: loginRecords(Date.now()) })
  await page.waitForSelector('#logins-empty', { state: 'hidden', timeout: 10_000 })
  await waitFor(async () => (await page.textContent('#t-received'))?.includes('135'), 10_000, 'the summed received count')
  await waitFor(async () => (await chartData('throughput')).points > 100, 10_000, 'the throughput chart')
  // the stretch where no processor ran is a break in the line, not a straight segment across it
  expect(await page.getAttribute('#chart-throughput', 'data-gaps')).toBe('1')
  // the device and locale panels say how many events they count
  expect(await page.textContent('#devices-total')).toMatch(/^135\D?000 events$/)
  expect(await page.textContent('#locales-total')).toMatch(/^135\D?000 events$/)
  await waitFor(async () => (await page.$$('#error-list li:not(.placeholder)')).length === 5, 10_000, 'the five errors listed')
  expect(await page.textContent('#t-p99')).toMatch(/^\d+(\.\d)?$/)

  // the collector's samples (every 500 ms since the start) keep arriving: a sample taken from now on is drawn within seconds
  const firstLive = Date.now()
  await waitFor(async () => (await chartData('cpu')).last >= firstLive, 5000, 'the first live sample on the CPU chart').catch((e: unknown) => {
    throw new Error(`${String(e)}; ${problems.join('; ')}`)
  })
  // from the sample's time to the page, as the page itself measures it, over a few samples
  const lags: number[] = []
  await waitFor(async () => {
    const lag = Number(await page.getAttribute('body', 'data-live-lag-ms'))
    if (lags.at(-1) !== lag) lags.push(lag)
    return lags.length >= 6
  }, 10_000, 'six live samples')
  lags.sort((a, b) => a - b)
  expect(lags[Math.floor(lags.length / 2)]).toBeLessThan(1000)
  await waitFor(async () => (await chartData('network')).last >= firstLive + 1000, 5000, 'later live samples on the network chart')
  expect(await page.textContent('#now-cpu')).toMatch(/^\d\d?(\.\d)? %$/)
  // every time axis, the wide network chart's too, labels its ticks the same way: hh:mm
  for (const id of ['cpu', 'memory', 'disk', 'network', 'interrupts', 'throughput']) {
    const labels = (await page.getAttribute(`#chart-${id}`, 'data-time-labels'))!.split('|')
    expect(labels.length, id).toBeGreaterThan(1)
    for (const label of labels) expect(label, id).toMatch(/^\d\d:\d\d$|^[A-Z][a-z]+ \d\d?$/) // a date only at midnight
  }
  expect(await page.textContent('#now-network')).toMatch(/kB\/s|MB\/s/)
  expect(problems).toEqual([])
})

it('switches between 5 min, 1 h and 24 h', async () => {
  const span = async () => {
    const d = await chartData('memory')
    return { points: d.points, minutes: (d.last - d.first) / 60_000 }
  }
  const five = await span()
  expect(five.minutes).toBeLessThanOrEqual(5.01)

  const hourResponse = page.waitForResponse((r) => r.url().includes('/api/metrics?range=1h'))
  await page.click('button[data-range="1h"]')
  await hourResponse
  await waitFor(async () => (await span()).minutes > 55, 5000, 'the 1 h range drawn')
  expect(await page.getAttribute('button[data-range="1h"]', 'aria-pressed')).toBe('true')
  expect(await page.getAttribute('button[data-range="5m"]', 'aria-pressed')).toBe('false')
  const hour = await span()
  expect(hour.minutes).toBeLessThanOrEqual(60.1)
  expect(hour.points).toBeLessThanOrEqual(740)

  await page.click('button[data-range="24h"]')
  await waitFor(async () => (await span()).minutes > 110, 5000, 'the 24 h range drawn')
  expect((await span()).points).toBeLessThan(200)
  await page.screenshot({ path: join(screenshotDir, 'dashboard-24h.png') })

  await page.click('button[data-range="5m"]')
  await waitFor(async () => (await span()).minutes <= 5.01, 5000, 'back to 5 min')
  // live samples keep arriving in the range switched back to
  const before = (await chartData('cpu')).last
  await waitFor(async () => (await chartData('cpu')).last > before, 5000, 'live samples after the switch')
  expect(problems).toEqual([])
})

it('shows the topics with their end offsets and the consumer groups with their lag', async () => {
  const sinkGroup = `kpipe-metrics-sink-${host.slice(4)}`
  await commitGroupOffset(settings, sinkGroup, settings.TOPIC_PERFORMANCE, 1n)
  await waitFor(async () => (await page.textContent('#groups-body'))?.includes(sinkGroup), 10_000, 'the group in the Kafka panel')
  const row = await page.$eval(`#topics-body`, (body, topic) => [...body.querySelectorAll('tr')].find((tr) => tr.cells[0]?.textContent === topic)?.textContent, settings.TOPIC_METRICS)
  // 151 seconds of metrics (181 less the 30 s hole) from two processor instances
  expect(row).toContain('302')
  expect(await page.textContent('#groups-body')).toMatch(new RegExp(`${settings.TOPIC_PERFORMANCE}/0: \\d+`))
  expect(problems).toEqual([])
})

it('lists the parked errors by type with the replay command for each', async () => {
  // the backlog is scanned at most every 15 s and the page asks every 30 s: reload until the errors sent above show
  await waitFor(async () => {
    await page.reload()
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 })
    return (await page.textContent('#replay-body'))?.includes('missing_fields')
  }, 40_000, 'the parked errors listed')
  const rows = await page.$$eval('#replay-body tr', (trs) => trs.map((tr) => [...(tr as HTMLTableRowElement).cells].map((c) => c.textContent)))
  expect(rows).toContainEqual([settings.TOPIC_ERRORS, 'missing_fields', '2', expect.stringMatching(/ago$/), `kpipe logins replay --from ${settings.TOPIC_ERRORS} --error-type missing_fields`])
  expect(rows).toContainEqual([settings.TOPIC_ERRORS, 'invalid_json', '1', expect.stringMatching(/ago$/), `kpipe logins replay --from ${settings.TOPIC_ERRORS} --error-type invalid_json`])
  expect(problems).toEqual([])
})

it('keeps its layout while data streams in, follows the dark scheme, and saves screenshots', async () => {
  const box = async () => page.$eval('#hosts-panel', (el) => el.getBoundingClientRect().height)
  const h1 = await box()
  const last = (await chartData('cpu')).last
  await waitFor(async () => (await chartData('cpu')).last > last + 1000, 5000, 'two more live samples')
  expect(await box()).toBe(h1)

  await page.screenshot({ path: join(screenshotDir, 'dashboard.png'), fullPage: true })
  await page.emulateMedia({ colorScheme: 'dark' })
  await waitFor(async () => (await page.evaluate(() => getComputedStyle(document.body).backgroundColor)) === 'rgb(13, 17, 23)', 5000, 'the dark background')
  await waitFor(async () => (await chartData('cpu')).points > 0, 5000, 'charts rebuilt in the dark scheme')
  await page.screenshot({ path: join(screenshotDir, 'dashboard-dark.png'), fullPage: true })

  await page.setViewportSize({ width: 390, height: 844 })
  await waitFor(async () => (await page.$eval('#chart-cpu canvas', (c) => c.getBoundingClientRect().width)) <= 390, 5000, 'charts resized to a phone')
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
  expect(overflow).toBe(0)
  await page.screenshot({ path: join(screenshotDir, 'dashboard-phone.png'), fullPage: false })
  expect(problems).toEqual([])
})

it('finishes loading in a headless browser with a virtual time budget, as screenshot tools use it', async () => {
  // Virtual time stands still while a network fetch is pending: a page whose live stream counted
  // as one (an EventSource) never used up its budget, and the screenshot never came.
  const file = join(screenshotDir, 'dashboard-virtual-time.png')
  const profile = mkdtempSync(join(tmpdir(), 'kpipe-chromium-'))
  const chromiumProcess = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, '--virtual-time-budget=3000', `--screenshot=${file}`, '--window-size=1280,800', dashboard.url], { stdio: 'ignore' })
  try {
    await waitFor(() => chromiumProcess.exitCode !== null || chromiumProcess.signalCode !== null, 60_000, 'chromium to take its screenshot and exit')
    expect(chromiumProcess.exitCode).toBe(0)
    expect(statSync(file).size).toBeGreaterThan(10_000)
  } finally {
    if (chromiumProcess.exitCode === null) chromiumProcess.kill('SIGKILL')
    rmSync(profile, { recursive: true, force: true })
  }
})

it('says what to start when nothing has arrived yet (a database without the table, topics not created)', async () => {
  // a database of its own on the run's server: the shared one has other tests' hosts
  const name = `dash_empty_${process.pid}_${Date.now()}`
  await db.query(`CREATE DATABASE ${name}`)
  const url = new URL(inject('postgresUrl'))
  url.pathname = `/${name}`
  const empty = await startDashboard(testSettings({ DATABASE_URL: url.toString() }), silentLog)
  const fresh = await context.newPage()
  const seen: string[] = []
  fresh.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') seen.push(`console ${m.type()}: ${m.text()} (${m.location().url})`)
  })
  fresh.on('pageerror', (e) => seen.push(`page error: ${e.message}`))
  fresh.on('response', (r) => {
    if (r.status() >= 400) seen.push(`HTTP ${r.status()} ${r.url()}`)
  })
  try {
    await fresh.goto(empty.url)
    await fresh.waitForSelector('body[data-ready="true"]', { timeout: 15_000 })
    expect(await fresh.isVisible('#hosts-empty')).toBe(true)
    expect(await fresh.textContent('#hosts-empty')).toContain('kpipe metrics collect')
    expect(await fresh.isVisible('#logins-empty')).toBe(true)
    expect(await fresh.textContent('#host-select')).toBe('no hosts yet')
    expect(await fresh.$eval('#host-select', (s) => (s as HTMLSelectElement).disabled)).toBe(true)
    const readyz = await fresh.evaluate(async () => (await fetch('/readyz')).status)
    expect(readyz).toBe(200)
    await fresh.screenshot({ path: join(screenshotDir, 'dashboard-empty.png') })
    expect(seen).toEqual([])
  } finally {
    await fresh.close()
    await empty.close()
    await db.query(`DROP DATABASE ${name}`)
  }
})
