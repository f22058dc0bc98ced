import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, inject, test } from 'vitest'
import { expectOneLineError, runKpipe } from '../../../test/support/cli.ts'
import { freePort } from '../../shell/broker/local-broker.ts'

/**
 * What a one-shot command says when Kafka is not there or the topic is not: one line with the
 * cause and where, a second with the setting to check, exit 1, no stack trace — at once, not
 * after retrying (refused logins: test/security/refused-connections.test.ts).
 */
const DEADLINE_MS = 60_000

function failsWithOneLine(args: string[], env: Record<string, string | undefined>) {
  const started = Date.now()
  const result = runKpipe(args, { LOG_LEVEL: 'warn', KPIPE_DATA_DIR: `/tmp/kpipe-one-shot-${randomUUID()}`, ...env }, DEADLINE_MS)
  expect(result.code, `kpipe ${args.join(' ')}: ${result.stderr}`).toBe(1)
  expect(Date.now() - started).toBeLessThan(DEADLINE_MS)
  const first = expectOneLineError(result.stderr)
  return { first, hint: result.stderr.split('\n').find((l) => l.startsWith('  → ')) ?? '' }
}

const topics = () => {
  const id = randomUUID().slice(0, 8)
  return { TOPIC_LOGINS: `gone-${id}-user-login`, TOPIC_PROCESSED: `gone-${id}-processed`, TOPIC_CLEANED: `gone-${id}-cleaned`, TOPIC_ERRORS: `gone-${id}-errors` }
}

describe('an unreachable broker', () => {
  test.each([
    ['tail', ['tail', 'processed-output', '--count', '1']],
    ['audit', ['audit']],
    ['topics create', ['topics', 'create']],
    ['logins generate --count', ['logins', 'generate', '--count', '10']],
    ['bench', ['bench', '--quick']],
  ])('%s: "cannot reach Kafka at …", naming KAFKA_BROKERS', async (_name, args) => {
    const port = await freePort()
    const { first, hint } = failsWithOneLine(args, { KAFKA_BROKERS: `127.0.0.1:${port}`, DATABASE_URL: inject('postgresUrl') })
    expect(first).toBe(`kpipe: cannot reach Kafka at 127.0.0.1:${port}: connection refused`)
    expect(hint).toContain(`KAFKA_BROKERS (now 127.0.0.1:${port})`)
  })

  test('kpipe up with KAFKA_BROKERS: the same line before anything starts (it used to exit 1 without a word)', async () => {
    const port = await freePort()
    const dataDir = mkdtempSync(join(tmpdir(), 'kpipe-up-unreachable-'))
    try {
      const { first, hint } = failsWithOneLine(['up', '--port', '0'], { KAFKA_BROKERS: `127.0.0.1:${port}`, KPIPE_DATA_DIR: dataDir, DATABASE_URL: undefined, KPIPE_HASH_KEY: undefined })
      expect(first).toBe(`kpipe: cannot reach Kafka at 127.0.0.1:${port}: connection refused`)
      expect(hint).toContain(`KAFKA_BROKERS (now 127.0.0.1:${port})`)
      expect(existsSync(join(dataDir, 'up.json'))).toBe(false)
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  test('a host name that does not resolve is named as such', () => {
    const { first } = failsWithOneLine(['audit'], { KAFKA_BROKERS: 'no-such-host.invalid:9092' })
    expect(first).toBe('kpipe: cannot reach Kafka at no-such-host.invalid:9092: host name not found')
  })
})

describe('a missing topic', () => {
  test('tail: the topic, where, and how to create it', () => {
    const topic = `no-such-topic-${randomUUID().slice(0, 8)}`
    const { first, hint } = failsWithOneLine(['tail', topic, '--count', '1'], { KAFKA_BROKERS: inject('kafkaBrokers') })
    expect(first).toBe(`kpipe: topic ${topic} does not exist on Kafka at ${inject('kafkaBrokers')}`)
    expect(hint).toContain('kpipe topics create')
  })

  test('audit: the input topic is named', () => {
    const names = topics()
    const { first } = failsWithOneLine(['audit'], { KAFKA_BROKERS: inject('kafkaBrokers'), ...names })
    expect(first).toMatch(new RegExp(`^kpipe: topic gone-[0-9a-f]{8}-[a-z-]+ does not exist on Kafka at ${inject('kafkaBrokers')}$`))
  })

  test('logins generate --count: the topic is named', () => {
    const names = topics()
    const { first } = failsWithOneLine(['logins', 'generate', '--count', '10'], { KAFKA_BROKERS: inject('kafkaBrokers'), ...names })
    expect(first).toBe(`kpipe: topic ${names.TOPIC_LOGINS} does not exist on Kafka at ${inject('kafkaBrokers')}`)
  })
})
