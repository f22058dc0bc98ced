import { Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { BatchHistogram } from './prometheus.ts'

describe('BatchHistogram', () => {
  const buckets = [0.001, 0.01, 0.1, 1]
  // on a bound, past the last bound, zero, and between bounds
  const observations = [0, 0.0005, 0.001, 0.0011, 0.01, 0.05, 0.1, 0.99, 1, 1.5, 42]

  it('exports the text prom-client exports for the same observations', async () => {
    const theirs = new Registry()
    const histogram = new Histogram({ name: 'x_seconds', help: 'what x took', labelNames: ['part'] as const, buckets, registers: [theirs] })
    const ours = new Registry()
    const batched = new BatchHistogram('x_seconds', 'what x took', buckets, { part: 'logins' })
    ours.registerMetric(batched as unknown as Histogram)
    for (const value of observations) {
      histogram.observe({ part: 'logins' }, value)
      batched.observe(value)
    }
    const text = await ours.metrics()
    expect(text).toBe(await theirs.metrics())
    expect(text).toContain('x_seconds_bucket{le="0.001",part="logins"} 3')
    expect(text).toContain('x_seconds_bucket{le="+Inf",part="logins"} 11')
    expect(text).toContain('x_seconds_count{part="logins"} 11')
  })

  it('starts again from nothing when reset', async () => {
    const registry = new Registry()
    const batched = new BatchHistogram('y_seconds', 'what y took', buckets)
    registry.registerMetric(batched as unknown as Histogram)
    batched.observe(0.5)
    registry.resetMetrics()
    batched.observe(2)
    const text = await registry.metrics()
    expect(text).toContain('y_seconds_bucket{le="1"} 0')
    expect(text).toContain('y_seconds_bucket{le="+Inf"} 1')
    expect(text).toContain('y_seconds_sum 2')
  })
})
