import { mkdtempSync, rmSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { exitOf, spawnKpipe, waitFor } from '../support/cli.ts'
import { DASHBOARD_TOKEN, expectNoSecrets, freePort, secure, secureEnv, uniqueTopics } from './support/secure-env.ts'

interface Summary { total: { received: number; processed: number } }
interface Metrics { sources: { database: number; live: number } }

/**
 * `kpipe up` against a secured cluster: KAFKA_BROKERS names the SASL_SSL listener (TLS with the
 * test CA, SCRAM-SHA-512), DATABASE_URL a PostgreSQL that accepts only verified TLS. Every part
 * (topics, generator, processor, collector, sink, dashboard feed) must reach both, the numbers
 * must move, nothing printed may hold a secret, and Ctrl-C must stop it with exit 0.
 */
describe('kpipe up on a SASL_SSL cluster', () => {
  it('runs the whole pipeline through TLS and SCRAM, and stops cleanly', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-up-secure-'))
    const port = await freePort()
    const env = secureEnv('SCRAM-SHA-512', { ...uniqueTopics(), KPIPE_DATA_DIR: dataDir, HOST: '127.0.0.1', METRICS_INTERVAL: '250ms', LOG_LEVEL: 'info' })
    const up = spawnKpipe(['up', '--port', String(port), '--rate', '100'], env)
    const base = `http://127.0.0.1:${port}`
    const api = async <T>(path: string): Promise<T | undefined> => {
      const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${DASHBOARD_TOKEN}` } })
      return response.ok ? ((await response.json()) as T) : undefined
    }
    try {
      await waitFor(() => up.output().includes('kpipe is running.') || up.exitCode !== null, 180_000, 'the ready banner')
      expect(up.exitCode, up.output().slice(-3000)).toBeNull()
      expect(up.output()).toContain(`kafka       ${secure().saslSsl}`)
      expect(up.output()).not.toContain('(local broker)')
      const summary = await waitFor(async () => {
        const s = await api<Summary>('/api/summary')
        return s && s.total.processed >= 50 ? s : undefined
      }, 120_000, 'processed logins in /api/summary')
      expect(summary.total.received).toBeGreaterThanOrEqual(summary.total.processed)
      // this machine's samples, through Kafka and the sink into PostgreSQL over TLS, read back by the dashboard
      // (other tests may write this host's rows too: count only what arrives while up runs)
      const rows = async () => (await api<Metrics>(`/api/metrics?range=5m&host=${encodeURIComponent(hostname())}`))?.sources.database ?? 0
      const before = await rows()
      await waitFor(async () => (await rows()) >= before + 3, 120_000, 'host samples written through TLS')
      // the API refuses a request without the token
      expect((await fetch(`${base}/api/summary`)).status).toBe(401)
    } finally {
      if (up.exitCode === null) up.kill('SIGINT')
    }
    const exit = await exitOf(up)
    try {
      expect(exit, up.output().slice(-3000)).toEqual({ code: 0, signal: null })
      expect(up.output()).not.toMatch(/Kafka unavailable|refused|unexpected error/)
      expectNoSecrets(up.output())
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  }, 420_000)
})
