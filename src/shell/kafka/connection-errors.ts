import { AuthenticationError, UserError as KafkaUserError } from '@platformatic/kafka'
import { SetupError, UserError } from '../errors.ts'
import type { KafkaConnection } from './connection.ts'
import { brokerClosingBeforeAnswering } from './listener-watch.ts'

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

/**
 * True when every failure `error` holds is the broker's answer that a group's committed offset is
 * held by a transaction not yet complete (UNSTABLE_OFFSET_COMMIT, KIP-447): the consumer asked for
 * stable offsets and stopped waiting for them. A failure of another kind among them (an attempt
 * that met a broker gone) makes it false. The offset becomes readable once that transaction is
 * committed (its markers written) or aborted.
 */
export function isUnstableOffsets(error: unknown): boolean {
  const failures = errorChain(error).filter((e) => {
    const { errors, cause } = (e ?? {}) as { errors?: unknown; cause?: unknown }
    return !(Array.isArray(errors) && errors.length > 0) && cause === undefined
  })
  return failures.length > 0 && failures.every((e) => (e as { apiId?: unknown } | null)?.apiId === 'UNSTABLE_OFFSET_COMMIT')
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

  // A plain-text client at a TLS listener: the client sees the TLS answer (nested inside a SASL
  // failure when a mechanism is set) and stops; no retry can change that.
  if (chain.some((e) => e instanceof Error && /^Broker requires TLS/.test(e.message))) {
    return new SetupError(
      `Kafka at ${broker()} requires TLS: the listener answered a plain-text connection in TLS`,
      `set KAFKA_SSL=true (with KAFKA_SSL_CA_FILE)${connection?.sasl ? '' : ', and KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD if the listener is SASL_SSL'}, or use a PLAINTEXT listener in KAFKA_BROKERS`,
    )
  }

  const auth = chain.find((e) => e instanceof AuthenticationError)
  // a SASL handshake the listener answered by closing the connection: it expects TLS first
  if (auth && errorChain(auth.cause).some((e) => e instanceof Error && /^Connection closed/.test(e.message))) {
    return listenerClosedError(chain, broker(), connection)
  }
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
  // A closed connection is an outage when the broker had answered this process before (it
  // restarts); from a broker that has closed every connection before answering, it is the
  // listener's security protocol (e.g. SASL_PLAINTEXT sent plain text), and no retry helps.
  // Only a broker of this connection counts: without one, the error cannot be placed.
  const closing = connection ? brokerClosingBeforeAnswering(connection.bootstrapBrokers) : undefined
  if (closing !== undefined) return listenerClosedError(chain, closing, connection)
  return undefined
}

/**
 * True for connection failures that retrying cannot fix: refused credentials, untrusted
 * certificates, TLS to a plain listener, and (given the connection whose error it is) a listener
 * of that connection that closes every connection before answering.
 */
export function isFatalKafkaError(error: unknown, connection?: KafkaConnection): boolean {
  return kafkaSetupError(error, connection) !== undefined
}

const UNREACHABLE_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
}

/**
 * Why a one-shot command (tail, audit, topics create, logins generate --count, bench) failed
 * against Kafka, as a SetupError whose message says what and where and whose hint names the
 * setting to check; undefined when the error is not a Kafka failure kpipe can explain. The
 * long-running parts retry an unreachable broker; a one-shot command reports it and stops.
 */
export function kafkaCommandError(error: unknown, connection?: KafkaConnection): SetupError | undefined {
  const setup = kafkaSetupError(error, connection)
  if (setup) return setup
  const chain = errorChain(error)
  const brokers = connection ? connection.bootstrapBrokers.join(',') : undefined
  const where = brokerOf(chain, connection)
  const brokersNow = brokers ? ` (now ${brokers})` : ''

  for (const e of chain) {
    const unknownTopic = e instanceof Error ? /^Unknown topics? (.+?)\.?$/.exec(e.message) : null
    if (unknownTopic) {
      return new SetupError(
        `topic ${unknownTopic[1]} does not exist on Kafka at ${brokers ?? where}`,
        'create the pipeline\'s topics with kpipe topics create, or check the topic name (TOPIC_* settings) and KAFKA_BROKERS',
      )
    }
  }
  if (chain.some((e) => e instanceof Error && /^Unsupported API Metadata/.test(e.message))) {
    return new SetupError(
      `Kafka at ${where} is not a broker's client listener: it does not answer metadata requests (a KRaft controller port?)`,
      `set KAFKA_BROKERS${brokersNow} to the brokers' client listeners (kpipe kafka status prints the local one)`,
    )
  }
  const closed = listenerClosedError(chain, where, connection)
  if (closed) return closed
  for (const e of chain) {
    const code = codeOf(e)
    const reason = code === undefined ? undefined : UNREACHABLE_CODES[code]
    if (reason) {
      return new SetupError(`cannot reach Kafka at ${where}: ${reason}`, `check KAFKA_BROKERS${brokersNow} and that the brokers run (for a local one: kpipe kafka start, kpipe kafka status)`)
    }
  }
  if (chain.some((e) => e instanceof Error && (/^Connection to \S+ (failed|timed out)/.test(e.message) || /Cannot connect to any broker/.test(e.message) || e.name === 'TimeoutError'))) {
    return new SetupError(`cannot reach Kafka at ${where}: no answer`, `check KAFKA_BROKERS${brokersNow} and that the brokers run (for a local one: kpipe kafka start, kpipe kafka status)`)
  }
  return undefined
}

/**
 * A listener that closes every connection before answering: what a TLS listener does with a
 * plain-text client, and a SASL listener with a client that does not authenticate. The hint
 * names the setting that is missing for this connection.
 */
export function listenerClosedError(chain: unknown[], where: string, connection?: KafkaConnection): SetupError | undefined {
  const closed = chain.some((e) => e instanceof Error && /^Connection closed/.test(e.message))
  if (!closed) return undefined
  const missing = [!connection?.tls && 'KAFKA_SSL=true (with KAFKA_SSL_CA_FILE)', !connection?.sasl && 'KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD'].filter(Boolean)
  return new SetupError(
    `Kafka at ${where} closed the connection before answering: the listener expects ${missing.length === 0 ? 'other security settings' : connection?.tls ? 'SASL' : connection?.sasl ? 'TLS' : 'TLS or SASL'}`,
    missing.length === 0 ? 'check KAFKA_BROKERS, KAFKA_SSL and KAFKA_SASL_MECHANISM against the listener\'s security protocol' : `set ${missing.join(', or ')} to match the listener's security protocol, or use a PLAINTEXT listener in KAFKA_BROKERS`,
  )
}

/** Errors worth retrying: not a refused login or certificate, not a bad option of the client (of `connection`, whose error it is). */
export function isRetriableKafkaError(error: unknown, connection?: KafkaConnection): boolean {
  return !(error instanceof AuthenticationError || error instanceof KafkaUserError || error instanceof UserError || isFatalKafkaError(error, connection))
}

/** An error as one line for a log message: the setup error it amounts to, else its message (and an AggregateError's first cause). */
export function describe(error: unknown, connection?: KafkaConnection): string {
  const setup = kafkaSetupError(error, connection)
  if (setup) return setup.message
  if (error instanceof AggregateError && error.errors.length > 0) return `${error.message}: ${describe(error.errors[0], connection)}`
  return error instanceof Error ? error.message : String(error)
}
