import { AuthenticationError, UserError as KafkaUserError } from '@platformatic/kafka'
import { SetupError, UserError } from '../errors.ts'
import type { KafkaConnection } from './connection.ts'

/**
 * Node's codes for a peer certificate that TLS verification refused. Retrying cannot fix any
 * of them: the configuration (which CA to trust, which host name to use) has to change.
 */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
])
const CERTIFICATE_DATES = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID'])
const WRONG_HOST = 'ERR_TLS_CERT_ALTNAME_INVALID'

/** Every error in a tree of `cause`s and AggregateError `errors`, outermost first. */
export function errorChain(error: unknown, depth = 0): unknown[] {
  if (depth > 8 || error === null || typeof error !== 'object') return error === undefined ? [] : [error]
  const out: unknown[] = [error]
  const { errors, cause } = error as { errors?: unknown; cause?: unknown }
  if (Array.isArray(errors)) for (const inner of errors) out.push(...errorChain(inner, depth + 1))
  if (cause !== undefined) out.push(...errorChain(cause, depth + 1))
  return out
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** The broker the client names in "Connection to host:port failed.", else the bootstrap list. */
function brokerOf(chain: unknown[], connection?: KafkaConnection): string {
  for (const e of chain) {
    const match = e instanceof Error ? /^Connection to (\S+?) (failed|timed out)/.exec(e.message) : null
    if (match) return match[1]!
  }
  return connection ? connection.bootstrapBrokers.join(',') : 'the brokers'
}

/**
 * A Kafka failure that no retry can fix — the brokers refused the SASL login, their TLS
 * certificate is not trusted, or a TLS client met a listener that does not speak TLS — as a
 * one-line SetupError with what to change; undefined for anything else (e.g. a broker that is
 * down, which callers retry). The client nests these inside "Cannot connect to any broker".
 */
export function kafkaSetupError(error: unknown, connection?: KafkaConnection): SetupError | undefined {
  if (error instanceof SetupError) return error
  const chain = errorChain(error)
  const broker = () => brokerOf(chain, connection)
  const login = connection?.sasl ? ` as ${JSON.stringify(connection.sasl.username)} with ${connection.sasl.mechanism}` : ''

  const auth = chain.find((e) => e instanceof AuthenticationError)
  if (auth) {
    const noMechanism = /suitable SASL mechanism/i.test(auth.message)
    return new SetupError(
      noMechanism
        ? `Kafka at ${broker()} does not offer the SASL mechanism${connection?.sasl ? ` ${connection.sasl.mechanism}` : ''}`
        : `Kafka at ${broker()} refused the SASL login${login}: authentication failed`,
      noMechanism
        ? 'set KAFKA_SASL_MECHANISM to one the brokers enable (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)'
        : 'check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM',
    )
  }
  for (const e of chain) {
    const code = codeOf(e)
    if (code === undefined) continue
    const reason = (e as Error).message
    if (UNTRUSTED_CERTIFICATE.has(code)) {
      return new SetupError(
        `TLS to Kafka at ${broker()} failed: the broker's certificate is not trusted (${reason})`,
        'set KAFKA_SSL_CA_FILE to the PEM file of the CA that signed the brokers\' certificates',
      )
    }
    if (CERTIFICATE_DATES.has(code)) {
      return new SetupError(`TLS to Kafka at ${broker()} failed: ${reason}`, 'the brokers\' certificate must be renewed (or the clock of this machine is wrong)')
    }
    if (code === WRONG_HOST) {
      return new SetupError(
        `TLS to Kafka at ${broker()} failed: the broker's certificate is not for this address (${reason})`,
        'connect with a host name the certificate names (KAFKA_BROKERS must match the brokers\' advertised names)',
      )
    }
    if (code.startsWith('ERR_OSSL_')) {
      return new SetupError(`the TLS files for Kafka were refused: ${reason}`, 'check KAFKA_SSL_CA_FILE, KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE (PEM; the key must match the certificate)')
    }
  }
  const handshake = chain.find((e) => e instanceof KafkaUserError && /TLS handshake failed/i.test(e.message))
  if (handshake) {
    return new SetupError(
      `TLS to Kafka at ${broker()} failed: the listener did not answer the TLS handshake`,
      'use the brokers\' SSL or SASL_SSL port in KAFKA_BROKERS, or unset KAFKA_SSL for a PLAINTEXT listener',
    )
  }
  return undefined
}

/** True for connection failures that retrying cannot fix: refused credentials, untrusted certificates, TLS to a plain listener. */
export function isFatalKafkaError(error: unknown): boolean {
  return kafkaSetupError(error) !== undefined
}

/** Errors worth retrying: not a refused login or certificate, not a bad option of the client. */
export function isRetriableKafkaError(error: unknown): boolean {
  return !(error instanceof AuthenticationError || error instanceof KafkaUserError || error instanceof UserError || isFatalKafkaError(error))
}

/** An error as one line for a log message: the setup error it amounts to, else its message (and an AggregateError's first cause). */
export function describe(error: unknown): string {
  const setup = kafkaSetupError(error)
  if (setup) return setup.message
  if (error instanceof AggregateError && error.errors.length > 0) return `${error.message}: ${describe(error.errors[0])}`
  return error instanceof Error ? error.message : String(error)
}
