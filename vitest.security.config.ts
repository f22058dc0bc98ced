import { defineConfig } from 'vitest/config'

/** `npm run test:security`: TLS and SASL against a secured local broker and PostgreSQL (test/security/). */
export default defineConfig({
  test: {
    include: ['test/security/**/*.test.ts'],
    globalSetup: ['test/security/global-setup.ts'],
    setupFiles: ['test/client-correction.setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 240_000,
    pool: 'forks',
    maxWorkers: 2,
  },
})
