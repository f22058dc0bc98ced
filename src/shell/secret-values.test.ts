import { expect, test } from 'vitest'
import { loadSettings, secretValues } from './settings.ts'
import { redactSecrets, registerSecrets } from './log.ts'

test('secret settings, and the password inside DATABASE_URL on its own, are redacted from log text', () => {
  const settings = loadSettings({
    KAFKA_SASL_PASSWORD: 'sasl-pass-123',
    KPIPE_HASH_KEY: 'a-hash-key-of-32-characters-long',
    KPIPE_DASHBOARD_TOKEN: 'dashboard-token-0123456789',
    DATABASE_URL: 'postgres://app:p%40ss-word-9@db:5432/app?sslmode=verify-full',
    KAFKA_SASL_USERNAME: 'alice',
  })
  const secrets = secretValues(settings)
  expect(secrets).toEqual(expect.arrayContaining(['sasl-pass-123', 'a-hash-key-of-32-characters-long', 'dashboard-token-0123456789', 'p%40ss-word-9', 'p@ss-word-9']))
  expect(secrets).not.toContain('alice')
  registerSecrets(secrets)
  expect(redactSecrets('auth for app failed (password p@ss-word-9), url p%40ss-word-9')).toBe('auth for app failed (password <redacted>), url <redacted>')
})
