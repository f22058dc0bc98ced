import { Admin } from '@platformatic/kafka'
import { readFileSync } from 'node:fs'
import { freePort, startLocalBroker, type LocalBrokerInfo } from '../../../src/shell/broker/local-broker.ts'
import type { TestCertificates } from './certificates.ts'

export interface SecureBroker {
  info: LocalBrokerInfo
  /** SASL_SSL: TLS with the test CA, then SASL PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 */
  saslSsl: string
  /** SSL with client certificates required (mutual TLS) */
  mutualTls: string
  /** PLAINTEXT: what the broker uses for itself; tests use it to show that TLS to a plain listener fails clearly */
  plaintext: string
  /** SASL_PLAINTEXT: SASL without TLS (the same users); a client that sends plain text is closed on before any answer */
  saslPlaintext: string
}

export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const

/**
 * A local Apache Kafka broker with a SASL_SSL listener (PLAIN users from the listener's JAAS
 * configuration, SCRAM users created by Kafka's storage tool at format time) and a mutual-TLS
 * listener, both with the keytool-made certificates. Inter-broker and controller traffic stay
 * on loopback PLAINTEXT listeners.
 */
export async function startSecureBroker(dataDir: string, certificates: TestCertificates, user: string, password: string): Promise<SecureBroker> {
  const [port, controllerPort, saslPort, mtlsPort, saslPlainPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()]
  const store = (kind: 'keystore' | 'truststore', path: string) => ({
    [`ssl.${kind}.location`]: path,
    [`ssl.${kind}.password`]: certificates.storePassword,
    [`ssl.${kind}.type`]: 'PKCS12',
  })
  const jaas = (module: string, extra = '') => `org.apache.kafka.common.security.${module} required${extra};`
  const saslSsl = `127.0.0.1:${saslPort}`
  const info = await startLocalBroker({
    dataDir,
    port,
    controllerPort,
    heapMb: 512,
    timeoutMs: 180_000,
    properties: {
      listeners: `PLAINTEXT://127.0.0.1:${port},SASL_SSL://127.0.0.1:${saslPort},SSL://127.0.0.1:${mtlsPort},SASL_PLAINTEXT://127.0.0.1:${saslPlainPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      'advertised.listeners': `PLAINTEXT://127.0.0.1:${port},SASL_SSL://127.0.0.1:${saslPort},SSL://127.0.0.1:${mtlsPort},SASL_PLAINTEXT://127.0.0.1:${saslPlainPort}`,
      'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT',
      ...store('keystore', certificates.serverKeystore),
      'ssl.key.password': certificates.storePassword,
      ...store('truststore', certificates.truststore),
      'listener.name.ssl.ssl.client.auth': 'required',
      'sasl.enabled.mechanisms': SASL_MECHANISMS.join(','),
      'listener.name.sasl_ssl.plain.sasl.jaas.config': jaas('plain.PlainLoginModule', ` user_${user}="${password}"`),
      'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config': jaas('scram.ScramLoginModule'),
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': jaas('scram.ScramLoginModule'),
      'listener.name.sasl_plaintext.plain.sasl.jaas.config': jaas('plain.PlainLoginModule', ` user_${user}="${password}"`),
      'listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config': jaas('scram.ScramLoginModule'),
      'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config': jaas('scram.ScramLoginModule'),
    },
    formatArgs: ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${user},password=${password}]`]),
    // up only when the secured listener answers an authenticated metadata request
    ready: () => answersSecurely(saslSsl, certificates.caPem, user, password),
  })
  return { info, saslSsl, mutualTls: `127.0.0.1:${mtlsPort}`, plaintext: info.bootstrap, saslPlaintext: `127.0.0.1:${saslPlainPort}` }
}

async function answersSecurely(bootstrap: string, caPem: string, username: string, password: string): Promise<boolean> {
  const admin = new Admin({
    clientId: 'kpipe-test-probe',
    bootstrapBrokers: [bootstrap],
    tls: { ca: readFileSync(caPem) },
    sasl: { mechanism: 'SCRAM-SHA-512', username, password },
    timeout: 2000,
    retries: 0,
  })
  try {
    return (await admin.metadata({ topics: [] })).brokers.size > 0
  } catch {
    return false
  } finally {
    await admin.close().catch(() => {})
  }
}
