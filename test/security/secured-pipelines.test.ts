import { randomUUID } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { exitOf, metricsPortOf, runKpipe, spawnKpipe, waitFor } from '../support/cli.ts'
import { openPostgres } from '../../src/shell/postgres/database.ts'
import { DASHBOARD_TOKEN, expectNoSecrets, freePort, secure, secureEnv, uniqueTopics, type Mechanism } from './support/secure-env.ts'

/**
 * Every command that talks to Kafka, through a SASL_SSL listener (TLS verified against the test
 * CA, then a SASL login), and the sink into PostgreSQL over verified TLS. Nothing any of them
 * prints — logs, output, /metrics — contains a password, the hash key or the token.
 */
describe('kpipe on a secured cluster', () => {
  test.each<Mechanism>(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'])('SASL %s over TLS: topics create, logins generate, tail', (mechanism) => {
    const env = secureEnv(mechanism, uniqueTopics())
    const created = runKpipe(['topics', 'create', '--partitions', '2', '--replication-factor', '1'], env, 90_000)
    expect(created.code, created.stderr).toBe(0)
    const generated = runKpipe(['logins', 'generate', '--count', '25', '--rate', '0', '--seed', '7'], env, 90_000)
    expect(generated.code, generated.stderr).toBe(0)
    const tailed = runKpipe(['tail', env.TOPIC_LOGINS!, '--from-beginning', '--count', '25', '--json'], env, 90_000)
    expect(tailed.code, tailed.stderr).toBe(0)
    expect(tailed.stdout.trim().split('\n')).toHaveLength(25)
    for (const out of [created, generated, tailed]) expectNoSecrets(out.stdout + out.stderr)
  })

  test('the login processor: every event accounted for (audit), /metrics without secrets, clean stop', async () => {
    const env = secureEnv('SCRAM-SHA-256', { ...uniqueTopics(), MAX_MESSAGE_AGE: '0' })
    expect(runKpipe(['topics', 'create'], env, 90_000).code).toBe(0)
    const generated = runKpipe(['logins', 'generate', '--count', '300', '--rate', '0', '--seed', '11', '--invalid-ratio', '0.2'], env, 90_000)
    expect(generated.code, generated.stderr).toBe(0)
    // port 0: the process binds a free port itself and logs it (a port picked here could be taken before it binds)
    const processor = spawnKpipe(['logins', 'process', '--group', `sec-${randomUUID()}`, '--metrics-port', '0'], env)
    try {
      const metricsPort = await metricsPortOf(processor)
      const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`
      await waitFor(async () => {
        const text = await (await fetch(metricsUrl)).text()
        return /kpipe_records_in_total\{part="logins",[^}]*\} 300\b/.test(text)
      }, 120_000, `300 records in on ${metricsUrl}\n${processor.output()}`)
      expectNoSecrets(await (await fetch(metricsUrl)).text())

      const audit = runKpipe(['audit', '--json'], env, 90_000)
      expect(audit.code, audit.stderr).toBe(0)
      expect(JSON.parse(audit.stdout)).toMatchObject({ inputs: 300, missing: 0 })
      const processed = runKpipe(['tail', env.TOPIC_PROCESSED!, '--from-beginning', '--count', '1', '--json'], env, 90_000)
      expect(processed.code, processed.stderr).toBe(0)
      expect(JSON.parse(processed.stdout.trim()).value.ip).toMatch(/\.xxx$|:/)
      expectNoSecrets(audit.stdout + audit.stderr + processed.stdout + processed.stderr)
    } finally {
      processor.kill('SIGTERM')
    }
    expect(await exitOf(processor)).toEqual({ code: 0, signal: null })
    expect(processor.output()).toContain('300 received')
    expectNoSecrets(processor.output())
  })

  test('collector → sink → PostgreSQL over verified TLS; /metrics of both without secrets', async () => {
    const env = secureEnv('PLAIN', uniqueTopics())
    const host = `sec-host-${randomUUID().slice(0, 8)}`
    const collector = spawnKpipe(['metrics', 'collect', '--interval', '100ms', '--host', host, '--metrics-port', '0'], env)
    const sink = spawnKpipe(['metrics', 'sink', '--group', `sec-${randomUUID()}`, '--metrics-port', '0'], env)
    const db = openPostgres(env.DATABASE_URL!)
    try {
      const [collectPort, sinkPort] = [await metricsPortOf(collector), await metricsPortOf(sink)]
      await waitFor(async () => {
        const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM performance WHERE host = $1', [host])
        return rows[0]!.n >= 10
      }, 120_000, `10 rows of ${host} in PostgreSQL\n${collector.output()}\n${sink.output()}`)
      // the server accepts TLS connections only (pg_hba.conf): the rows came over TLS
      const { rows } = await db.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')
      expect(rows[0]!.ssl).toBe(true)
      for (const port of [collectPort, sinkPort]) expectNoSecrets(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())
    } finally {
      collector.kill('SIGTERM')
      sink.kill('SIGTERM')
      await db.close()
    }
    expect(await exitOf(collector)).toEqual({ code: 0, signal: null })
    expect(await exitOf(sink)).toEqual({ code: 0, signal: null })
    expectNoSecrets(collector.output() + sink.output())
  })

  test('the dashboard reads Kafka through SASL_SSL; its /metrics and API carry no secret', async () => {
    const topics = uniqueTopics()
    const env = secureEnv('SCRAM-SHA-512', { ...topics, PORT: String(await freePort()) })
    expect(runKpipe(['topics', 'create'], env, 90_000).code).toBe(0)
    const dashboard = spawnKpipe(['dashboard'], env)
    try {
      const base = `http://127.0.0.1:${env.PORT}`
      // KPIPE_DASHBOARD_TOKEN is set, so the dashboard asks for it even on loopback
      const get = (path: string) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${DASHBOARD_TOKEN}` } })
      const kafka = await waitFor(async () => {
        const response = await get('/api/kafka')
        if (!response.ok) return undefined
        const body = (await response.json()) as { topics: { name: string }[] }
        return body.topics.some((t) => t.name === topics.TOPIC_LOGINS) ? body : undefined
      }, 90_000, `the Kafka panel at ${base}/api/kafka\n${dashboard.output()}`)
      expect(kafka.topics.length).toBeGreaterThan(0)
      for (const path of ['/metrics', '/api/status', '/api/kafka']) {
        const response = await get(path)
        expect(response.status, path).toBe(200)
        expectNoSecrets(await response.text())
      }
    } finally {
      dashboard.kill('SIGTERM')
    }
    expect((await exitOf(dashboard)).code).toBe(0)
    expectNoSecrets(dashboard.output())
  })

  test('mutual TLS: a client certificate from KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE', () => {
    const s = secure()
    const env = secureEnv('PLAIN', {
      ...uniqueTopics(),
      KAFKA_BROKERS: s.mutualTls,
      KAFKA_SASL_MECHANISM: undefined,
      KAFKA_SSL_CERT_FILE: s.certificates.clientCertPem,
      KAFKA_SSL_KEY_FILE: s.certificates.clientKeyPem,
    })
    const created = runKpipe(['topics', 'create'], env, 90_000)
    expect(created.code, created.stderr).toBe(0)
    const generated = runKpipe(['logins', 'generate', '--count', '5', '--rate', '0'], env, 90_000)
    expect(generated.code, generated.stderr).toBe(0)
  })
})
