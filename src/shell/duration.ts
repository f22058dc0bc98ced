const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parses `250ms`, `1s`, `5m`, `7d` or a bare number of milliseconds; undefined when it is none of those. */
export function parseDuration(text: string, bareUnit: keyof typeof UNITS = 'ms'): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text)
  if (!match) return undefined
  const value = Number(match[1]) * UNITS[match[2] ?? bareUnit]!
  return Number.isFinite(value) ? Math.round(value) : undefined
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}
