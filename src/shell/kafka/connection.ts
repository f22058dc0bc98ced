import { readFileSync } from 'node:fs'
import type { ConnectionOptions as TlsOptions } from 'node:tls'
import type { Settings } from '../settings.ts'
import { SetupError } from '../errors.ts'
import { watchListeners } from './listener-watch.ts'

/** What every Kafka client of kpipe needs to reach the cluster: brokers, client id, TLS, SASL. */
export interface KafkaConnection {
  bootstrapBrokers: string[]
  clientId: string
  tls?: TlsOptions
  sasl?: { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: string }
}

function readPem(path: string, setting: string): Buffer {
  try {
    return readFileSync(path)
  } catch (error) {
    throw new SetupError(`cannot read ${setting}=${path}: ${(error as NodeJS.ErrnoException).code ?? error}`, `check that ${setting} names a readable PEM file`)
  }
}

let lastConnection: KafkaConnection | undefined

/** The connection this process built last (one cluster per process): error messages name its user and mechanism. */
export function currentConnection(): KafkaConnection | undefined {
  return lastConnection
}

export function kafkaConnection(settings: Settings, clientSuffix?: string): KafkaConnection {
  const connection: KafkaConnection = {
    bootstrapBrokers: settings.KAFKA_BROKERS,
    clientId: clientSuffix ? `${settings.KAFKA_CLIENT_ID}-${clientSuffix}` : settings.KAFKA_CLIENT_ID,
  }
  if (settings.KAFKA_SSL) {
    const tls: TlsOptions = {}
    if (settings.KAFKA_SSL_CA_FILE) tls.ca = readPem(settings.KAFKA_SSL_CA_FILE, 'KAFKA_SSL_CA_FILE')
    if (settings.KAFKA_SSL_CERT_FILE) tls.cert = readPem(settings.KAFKA_SSL_CERT_FILE, 'KAFKA_SSL_CERT_FILE')
    if (settings.KAFKA_SSL_KEY_FILE) tls.key = readPem(settings.KAFKA_SSL_KEY_FILE, 'KAFKA_SSL_KEY_FILE')
    connection.tls = tls
  }
  if (settings.KAFKA_SASL_MECHANISM) {
    if (!settings.KAFKA_SASL_USERNAME || !settings.KAFKA_SASL_PASSWORD) {
      throw new SetupError(
        `KAFKA_SASL_MECHANISM=${settings.KAFKA_SASL_MECHANISM} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD`,
        'set both, or unset KAFKA_SASL_MECHANISM',
      )
    }
    connection.sasl = {
      mechanism: settings.KAFKA_SASL_MECHANISM,
      username: settings.KAFKA_SASL_USERNAME,
      password: settings.KAFKA_SASL_PASSWORD,
    }
  }
  lastConnection = connection
  return connection
}

/** The options object @platformatic/kafka clients take. */
export function clientOptions(connection: KafkaConnection, clientId = connection.clientId) {
  // a listener that closes every connection is then told from a broker that restarts
  watchListeners()
  return {
    clientId,
    bootstrapBrokers: connection.bootstrapBrokers,
    ...(connection.tls ? { tls: connection.tls } : {}),
    ...(connection.sasl ? { sasl: connection.sasl } : {}),
    // A short per-request timeout and a few retries, so an unreachable broker is noticed and
    // retried by our own backoff instead of hanging inside the client.
    timeout: 15_000,
    retries: 3,
    retryDelay,
  }
}

/**
 * The client's wait before it repeats a request: 250 ms, except after CONCURRENT_TRANSACTIONS. The
 * coordinator answers that while it still writes the markers of the transaction just committed,
 * which usually takes a few milliseconds; a processor that starts its next transaction at once (as
 * a pipelined exactly-once processor does) met it on half of its batches and then waited 250 ms
 * each time. Kafka's Java producer waits 20 ms there. This waits 20 ms first, then 250 and 500:
 * the client sends a request up to `retries` + 1 (4) times, and the three waits together (770 ms) are still
 * at least the 750 ms a busy coordinator had before, so a loaded broker is not given up on sooner.
 */
export function retryDelay(_client: unknown, _operation: string, attempt: number, _retries: number, error: unknown): number {
  if (isConcurrentTransactions(error)) return attempt <= 1 ? 20 : 250 * (attempt - 1)
  return 250
}

function isConcurrentTransactions(error: unknown): boolean {
  // the client's errors (and only they) have findBy; this module must not load the client itself
  const findBy = (error as { findBy?: (property: string, value: unknown) => unknown } | null)?.findBy
  return typeof findBy === 'function' && Boolean(findBy.call(error, 'apiId', 'CONCURRENT_TRANSACTIONS'))
}
