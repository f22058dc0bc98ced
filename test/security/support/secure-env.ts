import { randomBytes, randomUUID } from 'node:crypto'
import { expect, inject } from 'vitest'
import { freePort } from '../../../src/shell/broker/local-broker.ts'

export const secure = () => inject('secure')

/** Secrets that no output of kpipe may contain; random per process, as the passwords are. */
export const HASH_KEY = `hash-${randomBytes(16).toString('hex')}`
export const DASHBOARD_TOKEN = `token-${randomBytes(16).toString('hex')}`

export type Mechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'

/**
 * The environment of a kpipe child that reaches the SASL_SSL listener with the test CA, and
 * PostgreSQL over verified TLS. Settings of the outer environment that would change the
 * outcome are removed.
 */
export function secureEnv(mechanism: Mechanism = 'SCRAM-SHA-512', env: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const s = secure()
  return {
    KAFKA_BROKERS: s.saslSsl,
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: s.certificates.caPem,
    KAFKA_SSL_CERT_FILE: undefined,
    KAFKA_SSL_KEY_FILE: undefined,
    KAFKA_SASL_MECHANISM: mechanism,
    KAFKA_SASL_USERNAME: s.user,
    KAFKA_SASL_PASSWORD: s.password,
    KPIPE_HASH_KEY: HASH_KEY,
    KPIPE_DASHBOARD_TOKEN: DASHBOARD_TOKEN,
    DATABASE_URL: `${s.postgresUrl}?sslmode=verify-full&sslrootcert=${encodeURIComponent(s.certificates.caPem)}`,
    LOG_LEVEL: 'info',
    ...env,
  }
}

/** Topic names of one test, so that tests running side by side never share data. */
export function uniqueTopics(): Record<string, string> {
  const id = randomUUID().slice(0, 8)
  return {
    TOPIC_LOGINS: `sec-${id}-user-login`,
    TOPIC_PROCESSED: `sec-${id}-processed-output`,
    TOPIC_ERRORS: `sec-${id}-processed-errors`,
    TOPIC_CLEANED: `sec-${id}-cleaned-data`,
    TOPIC_SUMMARY: `sec-${id}-summary-output`,
    TOPIC_METRICS: `sec-${id}-metrics-output`,
    TOPIC_PERFORMANCE: `sec-${id}-performance`,
    TOPIC_PERFORMANCE_ERRORS: `sec-${id}-performance-errors`,
  }
}

/** Every secret of the run, and `extra` (e.g. a wrong password that was tried), is absent from `text`. */
export function expectNoSecrets(text: string, ...extra: string[]): void {
  const s = secure()
  for (const secret of [s.password, s.postgresPassword, HASH_KEY, DASHBOARD_TOKEN, s.certificates.storePassword, ...extra]) {
    expect(text.includes(secret), `a secret appears in:\n${text}`).toBe(false)
  }
}

export { freePort }
export { expectOneLineError } from '../../support/cli.ts'
