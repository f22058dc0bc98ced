/**
 * Epoch seconds as the login events carry them: a string of decimal digits or a JSON number that
 * is a whole, non-negative, safe integer. Anything else (floats, negative numbers, hex, ISO text,
 * surrounding spaces) is not epoch seconds: undefined.
 */
export function epochSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string' || value.length === 0 || value.length > 15) return undefined
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 48 || c > 57) return undefined
  }
  return Number(value)
}

/**
 * How far in the future an event may claim to be before it counts as not epoch seconds:
 * a day covers any clock skew; beyond it the sender almost surely wrote milliseconds.
 */
export const MAX_FUTURE_SECONDS = 86_400
