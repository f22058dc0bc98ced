/**
 * Percentiles of a stream of durations in constant memory and without sorting: log-spaced
 * buckets 2 % apart from 0.1 ms up, so a reported p99 is within 2 % of the true one. Recording
 * is one logarithm and one increment, cheap enough to do for every record.
 */
const MIN_MS = 0.1
const GROWTH = 1.02
const LOG_GROWTH = Math.log(GROWTH)
const BUCKETS = 1200 // up to 0.1 ms × 1.02^1200 ≈ 2 × 10^9 ms, far beyond any latency

export interface PercentileSummary {
  p50: number
  p95: number
  p99: number
  max: number
}

export class PercentileHistogram {
  readonly #counts = new Uint32Array(BUCKETS)
  count = 0
  max = 0

  record(ms: number): void {
    if (!(ms >= 0)) return
    const index = ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / LOG_GROWTH))
    this.#counts[index]!++
    this.count++
    if (ms > this.max) this.max = ms
  }

  /** The upper bound of the bucket holding the q-quantile (never above the max seen); 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!
      if (seen >= rank) return Math.min(this.max, MIN_MS * GROWTH ** i)
    }
    return this.max
  }

  summary(): PercentileSummary {
    return { p50: round(this.quantile(0.5)), p95: round(this.quantile(0.95)), p99: round(this.quantile(0.99)), max: round(this.max) }
  }

  reset(): void {
    this.#counts.fill(0)
    this.count = 0
    this.max = 0
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
