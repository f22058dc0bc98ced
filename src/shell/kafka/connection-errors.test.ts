import { AuthenticationError, MultipleErrors, NetworkError, ResponseError, UserError as KafkaUserError } from '@platformatic/kafka'
import { describe, expect, test } from 'vitest'
import { SetupError } from '../errors.ts'
import { describe as describeError, isFatalKafkaError, isUnstableOffsets, kafkaCommandError, kafkaSetupError } from './connection-errors.ts'
import type { KafkaConnection } from './connection.ts'
import { databaseSetupError } from '../postgres/database-errors.ts'

/** How the client reports a failed connection: "Cannot connect to any broker" around the cause. */
function asClientReports(cause: Error): Error {
  return new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection to broker-1:9093 failed.', { cause })])
}
function tlsError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}
const connection: KafkaConnection = {
  bootstrapBrokers: ['broker-1:9093', 'broker-2:9093'],
  clientId: 'kpipe',
  tls: {},
  sasl: { mechanism: 'SCRAM-SHA-512', username: 'alice', password: 'alice-secret' },
}

// The live cases (wrong password, untrusted CA, TLS to a plain listener) run against a real
// broker in test/security/; these are the shapes that are hard to provoke there.
describe('kafkaSetupError', () => {
  test('a refused SASL login, nested in the client\'s errors, names broker, user and mechanism — never the password', () => {
    const error = kafkaSetupError(asClientReports(new AuthenticationError('SASL authentication failed.')), connection)
    expect(error).toBeInstanceOf(SetupError)
    expect(error!.message).toBe('Kafka at broker-1:9093 refused the SASL login as "alice" with SCRAM-SHA-512: authentication failed')
    expect(`${error!.message} ${error!.hint}`).not.toContain('alice-secret')
  })

  test('a mechanism the brokers do not enable', () => {
    const error = kafkaSetupError(asClientReports(new AuthenticationError('Cannot find a suitable SASL mechanism.')), connection)
    expect(error!.message).toBe('Kafka at broker-1:9093 does not offer the SASL mechanism SCRAM-SHA-512')
  })

  test.each([
    ['SELF_SIGNED_CERT_IN_CHAIN', /certificate is not trusted/, /KAFKA_SSL_CA_FILE/],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /certificate is not trusted/, /KAFKA_SSL_CA_FILE/],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', /certificate is not trusted/, /KAFKA_SSL_CA_FILE/],
    ['CERT_HAS_EXPIRED', /failed: certificate has expired/, /renewed/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', /not for this address/, /KAFKA_BROKERS/],
    ['ERR_OSSL_X509_KEY_VALUES_MISMATCH', /TLS files for Kafka were refused/, /KAFKA_SSL_KEY_FILE/],
  ])('TLS %s', (code, message, hint) => {
    const error = kafkaSetupError(asClientReports(tlsError(code, code === 'CERT_HAS_EXPIRED' ? 'certificate has expired' : 'refused')), connection)
    expect(error!.message).toMatch(message)
    expect(error!.hint).toMatch(hint)
  })

  test('TLS to a listener that does not speak it', () => {
    const cause = new KafkaUserError('TLS handshake failed. Please verify the broker supports TLS.')
    expect(kafkaSetupError(asClientReports(cause))!.message).toBe('TLS to Kafka at broker-1:9093 failed: the listener did not answer the TLS handshake')
  })

  test('a broker that is down is not a setup error: it is retried', () => {
    const down = asClientReports(tlsError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9093'))
    expect(kafkaSetupError(down, connection)).toBeUndefined()
    expect(isFatalKafkaError(down)).toBe(false)
    expect(isFatalKafkaError(asClientReports(new AuthenticationError('SASL authentication failed.')))).toBe(true)
  })

  test('log lines describe a refused login clearly instead of "Cannot connect to any broker"', () => {
    expect(describeError(asClientReports(new AuthenticationError('SASL authentication failed.')))).toBe('Kafka at broker-1:9093 refused the SASL login: authentication failed')
  })
})

// the live cases (a refused port, a missing topic) run through the CLI in src/cli/commands/one-shot-errors.test.ts
describe('kafkaCommandError: why a one-shot command failed', () => {
  const plain: KafkaConnection = { bootstrapBrokers: ['broker-1:9093'], clientId: 'kpipe' }

  test('a setup error stays what it is', () => {
    expect(kafkaCommandError(asClientReports(new AuthenticationError('SASL authentication failed.')), connection)!.message).toMatch(/refused the SASL login/)
  })

  test('an unreachable broker: where, why, and the setting', () => {
    const error = kafkaCommandError(new MultipleErrors('metadata failed 4 times.', [asClientReports(tlsError('ECONNREFUSED', 'connect ECONNREFUSED'))]), plain)
    expect(error!.message).toBe('cannot reach Kafka at broker-1:9093: connection refused')
    expect(error!.hint).toMatch(/^check KAFKA_BROKERS \(now broker-1:9093\)/)
  })

  test('a listener that closes the connection: what it expects and the settings to change', () => {
    const closed = new MultipleErrors('metadata failed 4 times.', [new NetworkError('Connection closed')])
    expect(kafkaCommandError(closed, plain)!.message).toBe('Kafka at broker-1:9093 closed the connection before answering: the listener expects TLS or SASL')
    expect(kafkaCommandError(closed, plain)!.hint).toMatch(/set KAFKA_SSL=true .*, or KAFKA_SASL_MECHANISM/)
    const tlsOnly = { ...plain, tls: {} }
    expect(kafkaCommandError(closed, tlsOnly)!.message).toMatch(/expects SASL$/)
    expect(kafkaCommandError(closed, tlsOnly)!.hint).not.toContain('KAFKA_SSL=true')
  })

  test('a controller port given as a broker', () => {
    const error = kafkaCommandError(new KafkaUserError('Unsupported API Metadata.'), plain)
    expect(error!.message).toMatch(/^Kafka at broker-1:9093 is not a broker's client listener/)
    expect(error!.hint).toMatch(/KAFKA_BROKERS/)
  })

  test('anything else is left to the caller', () => {
    expect(kafkaCommandError(new Error('boom'), plain)).toBeUndefined()
  })
})

describe('isUnstableOffsets: a group\'s committed offsets held by a transaction', () => {
  // OffsetFetch (api key 9) answered UNSTABLE_OFFSET_COMMIT (88) for one partition, as the client builds it
  const unstable = () => new ResponseError(9, 9, { '/groups/0/topics/0/partitions/0': [88, null] }, {})

  test('every attempt refused that way: true, also wrapped in a cause', () => {
    const failed = new MultipleErrors('listCommits failed 4 times.', [unstable(), unstable(), unstable(), unstable()])
    expect(isUnstableOffsets(failed)).toBe(true)
    expect(isUnstableOffsets(new Error('the stream failed', { cause: failed }))).toBe(true)
  })

  test('an attempt that met a broker gone, another protocol error, or nothing: false', () => {
    const gone = new NetworkError('Connection to 127.0.0.1:9092 failed.', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) })
    expect(isUnstableOffsets(new MultipleErrors('listCommits failed 4 times.', [unstable(), unstable(), gone, gone]))).toBe(false)
    expect(isUnstableOffsets(new ResponseError(9, 9, { '/groups/0/topics/0/partitions/0': [88, null], '/groups/0/topics/0/partitions/1': [16, null] }, {}))).toBe(false)
    expect(isUnstableOffsets(new MultipleErrors('listCommits failed 0 times.', []))).toBe(false)
    expect(isUnstableOffsets(new Error('Kafka unavailable'))).toBe(false)
  })
})

describe('databaseSetupError', () => {
  const where = 'postgres://app:***@db:5432/app?sslmode=verify-full'
  test.each([
    [tlsError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'), /^TLS to PostgreSQL at .* not trusted/, /sslrootcert/],
    [tlsError('ERR_TLS_CERT_ALTNAME_INVALID', 'Hostname/IP does not match'), /not for this host/, /host name/],
    [tlsError('ENOENT', "ENOENT: no such file or directory, open '/ca.pem'"), /cannot read a TLS file/, /sslrootcert/],
    [tlsError('28P01', 'password authentication failed for user "app"'), /refused the login: password authentication failed/, /user and password/],
    [tlsError('28000', 'no pg_hba.conf entry for host "10.0.0.1", user "app", database "app", no encryption'), /refused the login/, /sslmode=verify-full/],
    [new Error('The server does not support SSL connections'), /does not accept TLS connections/, /remove sslmode/],
  ])('%s', (error, message, hint) => {
    const setup = databaseSetupError(error, where)
    expect(setup!.message).toMatch(message)
    expect(setup!.hint).toMatch(hint)
  })

  test('a server that is down stays retriable', () => {
    expect(databaseSetupError(tlsError('ECONNREFUSED', 'connect ECONNREFUSED'), where)).toBeUndefined()
    expect(databaseSetupError(tlsError('57P03', 'the database system is starting up'), where)).toBeUndefined()
  })
})
