import fc from 'fast-check'

/**
 * Generated inputs per property: a share in `npm test`, FUZZ_RUNS (100,000 in `npm run fuzz`)
 * otherwise. FUZZ_SEED replays a run; every failure prints the seed and the shrunk input.
 */
export function fuzzParameters(runsInNpmTest: number): fc.Parameters<unknown> {
  const runs = Number(process.env.FUZZ_RUNS ?? runsInNpmTest)
  const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED)
  return { numRuns: runs, ...(seed === undefined ? {} : { seed }) }
}

/** How long a run of `runs` inputs may take: generous on a loaded 2-core machine, never endless. */
export function fuzzTimeout(runsInNpmTest: number): number {
  return Math.max(60_000, Number(process.env.FUZZ_RUNS ?? runsInNpmTest) * 20)
}

/** Bytes that are mostly not text: random, or text with a byte flipped. */
export const noise = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.string({ unit: 'binary', maxLength: 200 }).map((s) => Buffer.from(s, 'utf8')),
  fc.tuple(fc.json(), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([text, at, byte]) => {
    const b = Buffer.from(text, 'utf8')
    if (b.length > 0) b[at % b.length] = byte
    return b
  }),
)
