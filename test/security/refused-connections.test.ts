import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { runKpipe } from '../support/cli.ts'
import { ConsumerLoop } from '../../src/shell/kafka/consumer-loop.ts'
import type { KafkaConnection } from '../../src/shell/kafka/connection.ts'
import { SetupError } from '../../src/shell/errors.ts'
import { createLogger } from '../../src/shell/log.ts'
import { expectNoSecrets, expectOneLineError, secure, secureEnv, uniqueTopics } from './support/secure-env.ts'

/**
 * What a user sees when the cluster or the database refuses kpipe: one line that says what was
 * refused and what to change, exit code 1, no stack trace, no password — and at once, not after
 * retrying forever (each run has a deadline well below the processor's endless backoff).
 */
const DEADLINE_MS = 60_000
const group = () => ['--group', `sec-${randomUUID()}`]

function refused(args: string[], env: Record<string, string | undefined>, ...secrets: string[]): string {
  const started = Date.now()
  const result = runKpipe(args, env, DEADLINE_MS)
  expect(result.code, `kpipe ${args.join(' ')} did not fail within ${DEADLINE_MS} ms\n${result.stderr}`).toBe(1)
  expect(Date.now() - started).toBeLessThan(DEADLINE_MS)
  expectNoSecrets(result.stdout + result.stderr, ...secrets)
  return expectOneLineError(result.stderr)
}

/**
 * A consumer loop run against `connection` until it ends or DEADLINE_MS passes: its error (or
 * 'stopped', 'still retrying'), and how long that took.
 */
async function loopOutcome(connection: KafkaConnection): Promise<{ outcome: unknown; ms: number }> {
  const loop = new ConsumerLoop({ connection, groupId: `sec-${randomUUID()}`, topics: ['user-login'], handler: () => [], log: createLogger('silent') })
  const started = Date.now()
  let deadline: NodeJS.Timeout | undefined
  const outcome = await Promise.race([loop.run().then(() => 'stopped', (error: unknown) => error), new Promise((resolve) => (deadline = setTimeout(resolve, DEADLINE_MS, 'still retrying')))])
  clearTimeout(deadline)
  loop.stop()
  return { outcome, ms: Date.now() - started }
}

describe('a wrong password', () => {
  const wrong = `wrong-${randomBytes(8).toString('hex')}`

  test.each([
    ['logins process', ['logins', 'process', ...group()], 'SCRAM-SHA-256'],
    ['metrics sink', ['metrics', 'sink', ...group()], 'SCRAM-SHA-512'],
    ['metrics collect', ['metrics', 'collect'], 'PLAIN'],
    ['logins generate', ['logins', 'generate', '--count', '1'], 'PLAIN'],
    ['tail', ['tail', 'user-login', '--count', '1'], 'SCRAM-SHA-256'],
    ['topics create', ['topics', 'create'], 'SCRAM-SHA-512'],
    ['audit', ['audit'], 'SCRAM-SHA-256'],
    ['bench', ['bench', '--quick'], 'SCRAM-SHA-512'],
  ] as const)('%s: refused SASL login, one line', (_name, args, mechanism) => {
    const line = refused([...args], secureEnv(mechanism, { ...uniqueTopics(), KAFKA_SASL_PASSWORD: wrong, LOG_LEVEL: 'warn' }), wrong)
    expect(line).toMatch(/refused the SASL login as "kpipe-test" with /)
    expect(line).toContain(mechanism)
  })

  test('the consumer loop itself stops on a refused login instead of retrying (credentials revoked while running)', async () => {
    const s = secure()
    const { outcome, ms } = await loopOutcome({ bootstrapBrokers: [s.saslSsl], clientId: 'kpipe-test', tls: { ca: readFileSync(s.certificates.caPem) }, sasl: { mechanism: 'SCRAM-SHA-256', username: s.user, password: wrong } })
    expect(outcome).toBeInstanceOf(SetupError)
    expect((outcome as SetupError).message).toMatch(/^Kafka at 127\.0\.0\.1:\d+ refused the SASL login as "kpipe-test" with SCRAM-SHA-256/)
    expect(ms).toBeLessThan(DEADLINE_MS)
  })

  test('an unknown user is refused the same way', () => {
    const line = refused(['logins', 'process', ...group()], secureEnv('SCRAM-SHA-256', { ...uniqueTopics(), KAFKA_SASL_USERNAME: 'nobody', LOG_LEVEL: 'warn' }))
    expect(line).toMatch(/refused the SASL login as "nobody"/)
  })
})

describe('an untrusted certificate', () => {
  test('logins process without the CA (system CAs only): the broker certificate is not trusted', () => {
    const line = refused(['logins', 'process', ...group()], secureEnv('SCRAM-SHA-256', { ...uniqueTopics(), KAFKA_SSL_CA_FILE: undefined, LOG_LEVEL: 'warn' }))
    expect(line).toMatch(/^kpipe: TLS to Kafka at 127\.0\.0\.1:\d+ failed: the broker's certificate is not trusted/)
  })

  test('metrics sink trusting another CA: not trusted either', () => {
    const line = refused(['metrics', 'sink', ...group()], secureEnv('PLAIN', { ...uniqueTopics(), KAFKA_SSL_CA_FILE: secure().certificates.otherCaPem, LOG_LEVEL: 'warn' }))
    expect(line).toMatch(/TLS to Kafka at .* the broker's certificate is not trusted/)
  })

  test('TLS to a listener that does not speak TLS', () => {
    const line = refused(['logins', 'process', ...group()], secureEnv('PLAIN', { ...uniqueTopics(), KAFKA_BROKERS: secure().plaintext, KAFKA_SASL_MECHANISM: undefined, LOG_LEVEL: 'warn' }))
    expect(line).toMatch(/TLS to Kafka at .* did not answer the TLS handshake/)
  })

  test('a PEM file that cannot be read is named', () => {
    const line = refused(['logins', 'process', ...group()], secureEnv('PLAIN', { KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem', LOG_LEVEL: 'warn' }))
    expect(line).toContain('KAFKA_SSL_CA_FILE=/nonexistent/ca.pem')
  })
})

const REQUIRES_TLS = /^kpipe: Kafka at 127\.0\.0\.1:\d+ requires TLS: the listener answered a plain-text connection in TLS$/
const CLOSED_EXPECTS_TLS = /^kpipe: Kafka at 127\.0\.0\.1:\d+ closed the connection before answering: the listener expects TLS$/

describe('a TLS listener sent plain text (TLS expected)', () => {
  test.each([
    // the client reads the TLS answer to its first request
    ['tail, plain text to the SASL_SSL listener', ['tail', 'user-login', '--count', '1'], { KAFKA_SSL: undefined, KAFKA_SSL_CA_FILE: undefined, KAFKA_SASL_MECHANISM: undefined }, REQUIRES_TLS, /KAFKA_SSL=true .*and KAFKA_SASL_MECHANISM/],
    // the SASL handshake comes first, and the listener closes the connection on it
    ['topics create, SASL without TLS', ['topics', 'create'], { KAFKA_SSL: undefined, KAFKA_SSL_CA_FILE: undefined }, CLOSED_EXPECTS_TLS, /KAFKA_SSL=true/],
    ['logins generate --count, plain text to the mutual-TLS listener', ['logins', 'generate', '--count', '1'], { KAFKA_BROKERS: secure().mutualTls, KAFKA_SSL: undefined, KAFKA_SSL_CA_FILE: undefined, KAFKA_SASL_MECHANISM: undefined }, REQUIRES_TLS, /KAFKA_SSL=true/],
  ])('%s: reported once, as such, with the setting', (_name, args, env, message, hint) => {
    const started = Date.now()
    const result = runKpipe(args, secureEnv('SCRAM-SHA-512', { ...uniqueTopics(), LOG_LEVEL: 'warn', ...env }), DEADLINE_MS)
    expect(result.code, result.stderr).toBe(1)
    expect(Date.now() - started).toBeLessThan(DEADLINE_MS)
    const line = expectOneLineError(result.stderr)
    expect(line).toMatch(message)
    expect(result.stderr).toMatch(hint)
    expectNoSecrets(result.stderr)
  })
})

const CLOSED_EXPECTS_SASL = /^kpipe: Kafka at (127\.0\.0\.1:\d+) closed the connection before answering: the listener expects TLS or SASL$/

describe('a SASL_PLAINTEXT listener sent plain text (SASL expected, no TLS)', () => {
  // the listener answers ApiVersions, then closes the connection on the first other request
  const plainText = () => ({ KAFKA_BROKERS: secure().saslPlaintext, KAFKA_SSL: undefined, KAFKA_SSL_CA_FILE: undefined, KAFKA_SASL_MECHANISM: undefined, LOG_LEVEL: 'warn' })

  test.each([
    ['logins process', ['logins', 'process', ...group()]],
    ['metrics sink', ['metrics', 'sink', ...group()]],
    ['logins sink', ['logins', 'sink', ...group()]],
    ['metrics collect', ['metrics', 'collect']],
    ['logins generate', ['logins', 'generate']],
  ])('%s: reported once, as such, with the settings to set — not retried as an outage', (_name, args) => {
    const started = Date.now()
    const result = runKpipe(args, secureEnv('PLAIN', { ...uniqueTopics(), ...plainText() }), DEADLINE_MS)
    expect(result.code, `kpipe ${args.join(' ')}: ${result.stderr}`).toBe(1)
    expect(Date.now() - started).toBeLessThan(DEADLINE_MS)
    const line = expectOneLineError(result.stderr)
    expect(line).toMatch(CLOSED_EXPECTS_SASL)
    expect(CLOSED_EXPECTS_SASL.exec(line)![1]).toBe(secure().saslPlaintext)
    expect(result.stderr).toMatch(/→ set KAFKA_SSL=true \(with KAFKA_SSL_CA_FILE\), or KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/)
    expect(result.stderr).not.toMatch(/unavailable|retrying/)
    expectNoSecrets(result.stderr)
  })

  test('kpipe up against it: the same line before anything starts', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-up-sasl-plain-'))
    try {
      const result = runKpipe(['up', '--port', '0'], secureEnv('PLAIN', { ...uniqueTopics(), ...plainText(), KPIPE_DATA_DIR: dataDir, DATABASE_URL: undefined, KPIPE_HASH_KEY: undefined }), DEADLINE_MS)
      expect(result.code, result.stderr).toBe(1)
      expect(expectOneLineError(result.stderr)).toMatch(CLOSED_EXPECTS_SASL)
      expect(result.stderr).toContain('KAFKA_SASL_MECHANISM')
      expectNoSecrets(result.stderr)
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  test('the same listener with the SASL settings serves kpipe: the listener is sound, only the settings were missing', () => {
    const env = secureEnv('SCRAM-SHA-256', { ...uniqueTopics(), KAFKA_BROKERS: secure().saslPlaintext, KAFKA_SSL: undefined, KAFKA_SSL_CA_FILE: undefined, LOG_LEVEL: 'warn' })
    const created = runKpipe(['topics', 'create'], env, DEADLINE_MS)
    expect(created.code, created.stderr).toBe(0)
    const generated = runKpipe(['logins', 'generate', '--count', '3'], env, DEADLINE_MS)
    expect(generated.code, generated.stderr).toBe(0)
  })

  test('the consumer loop itself stops with the one-line cause instead of retrying', async () => {
    const { outcome, ms } = await loopOutcome({ bootstrapBrokers: [secure().saslPlaintext], clientId: 'kpipe-test' })
    expect(outcome).toBeInstanceOf(SetupError)
    expect((outcome as SetupError).message).toBe(`Kafka at ${secure().saslPlaintext} closed the connection before answering: the listener expects TLS or SASL`)
    expect(ms).toBeLessThan(DEADLINE_MS)
  })
})

describe('PostgreSQL refusing the sink', () => {
  const s = () => secure()
  const sink = (databaseUrl: string, ...secrets: string[]) =>
    refused(['metrics', 'sink', ...group()], secureEnv('PLAIN', { ...uniqueTopics(), DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' }), ...secrets)

  test('verify-full without the root certificate: not trusted', () => {
    expect(sink(`${s().postgresUrl}?sslmode=verify-full`)).toMatch(/^kpipe: TLS to PostgreSQL at .* the server's certificate is not trusted/)
  })

  test('a root certificate of another CA: not trusted', () => {
    expect(sink(`${s().postgresUrl}?sslmode=verify-full&sslrootcert=${s().certificates.otherCaPem}`)).toMatch(/not trusted/)
  })

  test('no TLS to a server that requires it: the login is refused, with the fix', () => {
    const result = runKpipe(['metrics', 'sink', ...group()], secureEnv('PLAIN', { ...uniqueTopics(), DATABASE_URL: s().postgresUrl, LOG_LEVEL: 'warn' }), DEADLINE_MS)
    expect(result.code).toBe(1)
    expect(expectOneLineError(result.stderr)).toMatch(/refused the login: .*no encryption/)
    expect(result.stderr).toContain('sslmode=verify-full')
    expectNoSecrets(result.stderr)
  })

  test('a wrong password: refused, the password named nowhere', () => {
    const wrong = `pgwrong-${randomBytes(8).toString('hex')}`
    const url = new URL(s().postgresUrl)
    url.password = wrong
    expect(sink(`${url.toString()}?sslmode=verify-full&sslrootcert=${s().certificates.caPem}`, wrong)).toMatch(/refused the login: password authentication failed/)
  })
})

describe('secrets in --help and in setting errors', () => {
  test('no --help output contains a secret', () => {
    const env = secureEnv()
    for (const args of [[], ['logins'], ['logins', 'process'], ['logins', 'generate'], ['metrics', 'sink'], ['metrics', 'collect'], ['dashboard'], ['tail'], ['audit'], ['topics', 'create'], ['kafka', 'start']]) {
      const result = runKpipe([...args, '--help'], env)
      expect(result.code, `${args.join(' ')} --help: ${result.stderr}`).toBe(0)
      expect(result.stdout).toContain('Usage:')
      expectNoSecrets(result.stdout + result.stderr)
    }
  })

  test('a rejected secret setting is named, its value is not', () => {
    const shortKey = 'short-secret'
    const result = runKpipe(['logins', 'process'], secureEnv('PLAIN', { KPIPE_HASH_KEY: shortKey }))
    expect(result.code).toBe(2)
    expect(expectOneLineError(result.stderr)).toContain('KPIPE_HASH_KEY="<redacted>"')
    expect(result.stderr).not.toContain(shortKey)
  })
})
