import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, inject, it } from 'vitest'
import { openPglite } from '../shell/postgres/database.ts'
import { uniqueName, waitUntil } from '../../test/support/host-metrics.ts'
import { exitOf, metricsPortOf, runKpipe, spawnKpipe } from '../../test/support/cli.ts'

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  return text.split('\n').filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
}

describe('kpipe metrics collect / sink', () => {
  it('refuses an interval below 100 ms or not a duration, in one line, exit 2', () => {
    for (const interval of ['50ms', 'soon']) {
      const result = runKpipe(['metrics', 'collect', '--interval', interval], { KAFKA_BROKERS: inject('kafkaBrokers') })
      expect(result.code).toBe(2)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).toContain(`METRICS_INTERVAL="${interval}"`)
    }
  })

  it('collector and sink as processes into embedded PGlite; SIGINT and SIGTERM stop both cleanly with exit 0', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-cli-'))
    // removed whatever happens: a failing test must not leave its data directory behind
    try {
      const host = uniqueName('cli-host')
      const env = { KAFKA_BROKERS: inject('kafkaBrokers'), KPIPE_DATA_DIR: dataDir, TOPIC_PERFORMANCE: uniqueName('performance'), TOPIC_PERFORMANCE_ERRORS: uniqueName('performance-errors') }
      // port 0: each process binds a free port itself and logs it (a port picked here could be taken before it binds)
      const collector = spawnKpipe(['metrics', 'collect', '--interval', '100ms', '--host', host, '--metrics-port', '0'], env)
      const sink = spawnKpipe(['metrics', 'sink', '--group', uniqueName('sink'), '--metrics-port', '0'], env)
      try {
        const [collectPort, sinkPort] = [await metricsPortOf(collector), await metricsPortOf(sink)]
        await waitUntil(async () => (await metric(sinkPort, 'kpipe_sink_rows_written_total')) >= 10, 'ten rows written by the sink', 40_000)
        expect(await metric(collectPort, 'kpipe_collector_samples_total')).toBeGreaterThanOrEqual(10)
        expect(await metric(collectPort, 'kpipe_collector_sampling_seconds_count')).toBeGreaterThanOrEqual(10)
        expect((await fetch(`http://127.0.0.1:${sinkPort}/readyz`)).status).toBe(200)
        const stopped = Date.now()
        collector.kill('SIGINT')
        sink.kill('SIGTERM')
        expect((await exitOf(collector)).code).toBe(0)
        expect((await exitOf(sink)).code).toBe(0)
        expect(Date.now() - stopped).toBeLessThan(10_000)
      } finally {
        collector.kill('SIGKILL')
        sink.kill('SIGKILL')
      }
      expect(collector.output()).toContain('collector stopped')
      const db = await openPglite(join(dataDir, 'pg'))
      try {
        const { rows } = await db.query<{ n: number; calls: number }>('SELECT count(*)::int AS n, count(cpu_calls)::int AS calls FROM performance WHERE host = $1', [host])
        expect(rows[0]!.n).toBeGreaterThanOrEqual(10)
        expect(rows[0]!.calls).toBe(0)
      } finally {
        await db.close()
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
