import { afterAll, expect, inject, it } from 'vitest'
import { exitOf, runKpipe, spawnKpipe, waitFor } from '../../test/support/cli.ts'

/** `kpipe dashboard` as users run it (the built CLI): prints its URL, serves, stops cleanly on a signal. */
const env = { KAFKA_BROKERS: inject('kafkaBrokers'), DATABASE_URL: inject('postgresUrl'), KPIPE_DASHBOARD_TOKEN: undefined }
const children: ReturnType<typeof spawnKpipe>[] = []
afterAll(() => children.forEach((c) => c.kill('SIGKILL')))

it('prints its URL, answers, and exits 0 within 10 s of SIGTERM', async () => {
  const child = spawnKpipe(['dashboard', '--port', '0'], env)
  children.push(child)
  const url = await waitFor(() => /kpipe dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(child.output())?.[1], 30_000, 'the URL on stdout')
  expect((await fetch(new URL('/healthz', url))).status).toBe(200)
  await waitFor(async () => (await fetch(new URL('/readyz', url))).status === 200, 15_000, 'ready')
  const page = await fetch(url)
  expect(await page.text()).toContain('<title>kpipe · live dashboard</title>')
  const stopped = Date.now()
  child.kill('SIGTERM')
  expect(await exitOf(child)).toEqual({ code: 0, signal: null })
  expect(Date.now() - stopped).toBeLessThan(10_000)
  expect(child.output()).toContain('SIGTERM: stopping the dashboard')
})

it('refuses a non-loopback address without a token: one line, exit 2', () => {
  const r = runKpipe(['dashboard', '--host', '0.0.0.0', '--port', '0'], env)
  expect(r.code).toBe(2)
  expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^kpipe: refusing to serve the dashboard on HOST=0\.0\.0\.0 without KPIPE_DASHBOARD_TOKEN/)])
})

it('names a bad port setting', () => {
  const r = runKpipe(['dashboard'], { ...env, PORT: '99999' })
  expect(r.code).toBe(2)
  expect(r.stderr).toContain('invalid setting PORT="99999": expected a port number from 0 to 65535')
})
