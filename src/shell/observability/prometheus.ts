import type { Server } from 'node:http'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Logger } from '../log.ts'

/**
 * The Prometheus series of every kpipe part, all prefixed `kpipe_`. One registry per process;
 * each part updates the series it owns, and `/metrics` (the dashboard, or `--metrics-port`)
 * serves them all.
 */
export const registry = new Registry()
collectDefaultMetrics({ register: registry, prefix: 'kpipe_' })

export const recordsIn = new Counter({
  name: 'kpipe_records_in_total',
  help: 'Records consumed, by part and topic',
  labelNames: ['part', 'topic'] as const,
  registers: [registry],
})

export const recordsOut = new Counter({
  name: 'kpipe_records_out_total',
  help: 'Records written, by part, topic and outcome (processed, filtered, error, summary, metrics, sample)',
  labelNames: ['part', 'topic', 'outcome'] as const,
  registers: [registry],
})

/**
 * A Prometheus histogram whose observations come many at a time, in prom-client's registry and
 * exposition format. prom-client's `observe` builds and hashes a labels object on every call
 * (~0.3 µs); the processor observes one latency per record, so it counts them here into plain
 * arrays and the text is built only when `/metrics` is read. Its labels are fixed at creation.
 */
export class BatchHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #bounds: Float64Array
  /** observations per bucket, not cumulative; the last is +Inf */
  readonly #counts: Float64Array
  #sum = 0
  #count = 0

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
    readonly labels: Readonly<Record<string, string>> = {},
  ) {
    this.#bounds = Float64Array.from(buckets)
    this.#counts = new Float64Array(buckets.length + 1)
  }

  /** One observation (the value's unit is the metric's). */
  observe(value: number): void {
    let i = 0
    while (i < this.#bounds.length && value > this.#bounds[i]!) i++
    this.#counts[i]!++
    this.#sum += value
    this.#count++
  }

  /** What prom-client's registry reads: cumulative buckets with `le`, then `_sum` and `_count`. */
  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: { labels: Record<string, string | number>; value: number; metricName: string }[] }> {
    const values = []
    let cumulative = 0
    for (let i = 0; i <= this.#bounds.length; i++) {
      cumulative += this.#counts[i]!
      values.push({ labels: { le: i < this.#bounds.length ? this.#bounds[i]! : '+Inf', ...this.labels }, value: cumulative, metricName: `${this.name}_bucket` })
    }
    values.push({ labels: { ...this.labels }, value: this.#sum, metricName: `${this.name}_sum` })
    values.push({ labels: { ...this.labels }, value: this.#count, metricName: `${this.name}_count` })
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values })
  }

  reset(): void {
    this.#counts.fill(0)
    this.#sum = 0
    this.#count = 0
  }
}

export const processingLatency = new BatchHistogram(
  'kpipe_processing_latency_seconds',
  'Kafka record timestamp of an input to its outputs acknowledged',
  [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  { part: 'logins' },
)
// the registry takes any object that answers get() as its metrics do; its types list only prom-client's own classes
registry.registerMetric(processingLatency as unknown as Histogram)

export const consumerLag = new Gauge({
  name: 'kpipe_consumer_lag',
  help: 'Records between the committed offset and the end of a partition',
  labelNames: ['part', 'topic', 'partition'] as const,
  registers: [registry],
})

export const sinkRowsWritten = new Counter({
  name: 'kpipe_sink_rows_written_total',
  help: 'Rows inserted into the performance table (replays that hit ON CONFLICT DO NOTHING excluded)',
  registers: [registry],
})

export const sinkBatchSeconds = new Histogram({
  name: 'kpipe_sink_batch_seconds',
  help: 'Time to write one batch to PostgreSQL',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
  registers: [registry],
})

export const collectorSamples = new Counter({
  name: 'kpipe_collector_samples_total',
  help: 'Host metrics samples produced',
  labelNames: ['host'] as const,
  registers: [registry],
})

export const collectorSamplingSeconds = new Histogram({
  name: 'kpipe_collector_sampling_seconds',
  help: 'Time to read one host metrics sample',
  buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
  registers: [registry],
})

/**
 * `/metrics`, `/healthz` and `/readyz` on a port of its own, for the processor, the sinks and
 * the collector (`--metrics-port`). `ready` says whether the part's dependencies answer. Once it
 * serves, it logs `metrics on http://host:port/metrics` with the port bound (`--metrics-port 0`
 * takes any free one, and this line is how a user or a test learns which).
 */
export async function serveMetrics(port: number, host: string, log: Pick<Logger, 'info'>, ready: () => Promise<boolean> | boolean = () => true): Promise<Server> {
  // node:http taken as CommonJS: an ES import of it reads every export, and its lazy WebSocket loads
  // Node's bundled HTTP client (undici, ~3 MB of heap) into every process that imports this module
  const { createServer } = process.getBuiltinModule('node:http')
  const server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/metrics') {
        res.setHeader('content-type', registry.contentType)
        res.end(await registry.metrics())
      } else if (req.url === '/healthz') {
        res.setHeader('content-type', 'application/json')
        res.end('{"status":"ok"}')
      } else if (req.url === '/readyz') {
        const ok = await Promise.resolve(ready()).catch(() => false)
        res.statusCode = ok ? 200 : 503
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ status: ok ? 'ready' : 'not ready' }))
      } else {
        res.statusCode = 404
        res.end()
      }
    })().catch(() => {
      res.statusCode = 500
      res.end()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  log.info(`metrics on http://${host}:${(server.address() as { port: number }).port}/metrics`)
  return server
}
