import { defineConfig } from 'vitest/config'

/**
 * `npm run test:faults`: the reliability suite (docs/reliability.md). Its own run, on the same
 * global setup (a real broker and PostgreSQL); one file at a time, because each scenario loads
 * the machine on purpose and kills parts of it.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/client-correction.setup.ts'],
    testTimeout: 900_000,
    hookTimeout: 300_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
})
