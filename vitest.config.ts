import { configDefaults, defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // the reliability suite runs on its own: npm run test:faults (vitest.faults.config.ts)
    // and so does the secured-cluster suite: npm run test:security (vitest.security.config.ts)
    exclude: [...configDefaults.exclude, 'test/faults/**', 'test/security/**'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/client-correction.setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
})
