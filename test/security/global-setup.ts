import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import 'vitest'
import type { TestProject } from 'vitest/node'
import { freePort, stopLocalBroker } from '../../src/shell/broker/local-broker.ts'
import { allStarted } from '../support/all-started.ts'
import { removePostgres } from '../support/postgres-server.ts'
import { makeTestCertificates, type TestCertificates } from './support/certificates.ts'
import { startSecureBroker } from './support/secure-broker.ts'
import { startSecurePostgres, type SecurePostgres } from './support/secure-postgres.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    secure: {
      saslSsl: string
      mutualTls: string
      plaintext: string
      saslPlaintext: string
      user: string
      password: string
      certificates: TestCertificates
      postgresUrl: string
      postgresPassword: string
    }
  }
}

/**
 * For `npm run test:security`: certificates made with keytool in a temp dir, a local Kafka
 * broker with SASL_SSL and mutual-TLS listeners, and a PostgreSQL server that accepts only TLS.
 * Passwords are random per run, so that finding one in any output is never a coincidence.
 */
export default async function setup(project: TestProject) {
  const root = mkdtempSync(join(tmpdir(), 'kpipe-security-'))
  const brokerData = join(root, 'broker')
  let postgres: SecurePostgres | undefined
  const teardown = async () => {
    await stopLocalBroker(brokerData).catch(() => {})
    if (postgres) removePostgres(postgres)
    postgres = undefined
    rmSync(root, { recursive: true, force: true })
  }
  const onExit = () => void teardown()
  process.once('SIGINT', onExit)
  process.once('SIGTERM', onExit)
  try {
    const certificates = makeTestCertificates(mkdtempSync(join(root, 'certs-')))
    const user = 'kpipe-test'
    const password = `sasl-${randomBytes(12).toString('hex')}`
    const postgresPassword = `pg-${randomBytes(12).toString('hex')}`
    const pgPort = await freePort()
    // the teardown only once both have settled (PostgreSQL may fail at once, while the broker is starting)
    const [broker, pg] = await allStarted([
      startSecureBroker(brokerData, certificates, user, password),
      // kept as soon as it runs: stopped and removed by the teardown even when the broker fails to start
      Promise.resolve().then(() => (postgres = startSecurePostgres(pgPort, certificates.serverCertPem, certificates.serverKeyPem, postgresPassword))),
    ] as const)
    project.provide('secure', {
      saslSsl: broker.saslSsl,
      mutualTls: broker.mutualTls,
      plaintext: broker.plaintext,
      saslPlaintext: broker.saslPlaintext,
      user,
      password,
      certificates,
      postgresUrl: pg.url,
      postgresPassword,
    })
  } catch (error) {
    await teardown()
    throw error
  }
  return teardown
}
