import { defineConfig } from 'vitest/config'

/**
 * `npm run fuzz`: the property-based tests of the pure cores (`*.fuzz.test.ts`: the login rules,
 * the sample decoder, IP masking) with 100,000 generated inputs each; `npm test` runs them too,
 * with a smaller share. No broker, no database: pure functions only.
 */
export default defineConfig({
  test: {
    include: ['src/**/*.fuzz.test.ts'],
    env: { FUZZ_RUNS: process.env.FUZZ_RUNS ?? '100000' },
    testTimeout: 3_600_000,
    pool: 'forks',
    maxWorkers: 2,
  },
})
