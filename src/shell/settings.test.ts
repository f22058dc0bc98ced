import { describe, expect, it } from 'vitest'
import { loadSettings, SETTING_NAMES, settingDefault, settingMeta } from './settings.ts'
import { SettingError } from './errors.ts'
import { runKpipe } from '../../test/support/cli.ts'

describe('settings', () => {
  it('has defaults of SPEC.md', () => {
    const s = loadSettings({})
    expect(s.KAFKA_BROKERS).toEqual(['127.0.0.1:9092'])
    expect(s.MAX_MESSAGE_AGE).toBe(60)
    expect(s.ALLOWED_APP_VERSIONS).toEqual(['2.3.0'])
    expect(s.SUMMARY_PUBLISH_INTERVAL).toBe(1000)
    expect(s.METRICS_MODE).toBe('interval')
    expect(s.HOST).toBe('127.0.0.1')
    expect(s.PORT).toBe(8080)
    expect(s.KPIPE_DATA_DIR).toBe('.kpipe')
    expect(s.METRICS_INTERVAL).toBe(500)
    expect(s.TOPIC_LOGINS).toBe('user-login')
    expect(s.DATABASE_URL).toBeUndefined()
  })

  it('parses values from the environment and lets flags win', () => {
    const s = loadSettings(
      { KAFKA_BROKERS: 'a:1, b:2', MAX_MESSAGE_AGE: '0', ALLOWED_APP_VERSIONS: '2.3.0,2.4.0', METRICS_INTERVAL: '1s', KAFKA_SSL: 'true', PORT: '9000' },
      { PORT: '9001' },
    )
    expect(s.KAFKA_BROKERS).toEqual(['a:1', 'b:2'])
    expect(s.MAX_MESSAGE_AGE).toBe(0)
    expect(s.ALLOWED_APP_VERSIONS).toEqual(['2.3.0', '2.4.0'])
    expect(s.METRICS_INTERVAL).toBe(1000)
    expect(s.KAFKA_SSL).toBe(true)
    expect(s.PORT).toBe(9001)
  })

  it('treats empty values as unset', () => {
    expect(loadSettings({ DATABASE_URL: '', PORT: '' }).PORT).toBe(8080)
  })

  const bad: [string, string, RegExp][] = [
    ['KAFKA_BROKERS', 'not a broker', /host:port/],
    ['KAFKA_BROKERS', 'h:99999', /host:port/],
    ['KAFKA_SSL', 'maybe', /true or false/],
    ['KAFKA_SASL_MECHANISM', 'GSSAPI', /PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512/],
    ['DATABASE_URL', 'mysql://x', /postgres:\/\//],
    ['MAX_MESSAGE_AGE', '-1', /whole number of seconds/],
    ['MAX_MESSAGE_AGE', 'abc', /whole number of seconds/],
    ['MAX_MESSAGE_AGE', '1.5', /whole number of seconds/],
    ['SUMMARY_PUBLISH_INTERVAL', '0', /1 or more/],
    ['METRICS_MODE', 'sometimes', /interval or per-message/],
    ['METRICS_INTERVAL', '50ms', /at least 100ms/],
    ['METRICS_INTERVAL', 'soon', /at least 100ms/],
    ['PORT', '70000', /port number/],
    ['LOG_LEVEL', 'loud', /fatal, error/],
    ['KPIPE_HASH_KEY', 'short', /at least 16/],
    ['TOPIC_LOGINS', 'bad topic!', /Kafka topic name/],
  ]
  it.each(bad)('%s=%j is rejected with the setting, the value and what is expected', (name, value, expected) => {
    let error: unknown
    try {
      loadSettings({ [name]: value })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(SettingError)
    const message = (error as Error).message
    expect(message).toContain(name)
    expect(message).toMatch(expected)
    expect(message.split('\n')).toHaveLength(1)
    if (settingMeta(name as never).secret) expect(message).not.toContain(value)
    else expect(message).toContain(JSON.stringify(value))
  })

  it('describes every setting', () => {
    for (const name of SETTING_NAMES) {
      expect(settingMeta(name).description.length, name).toBeGreaterThan(5)
      expect(settingMeta(name).expected.length, name).toBeGreaterThan(3)
    }
    expect(settingDefault('METRICS_RETENTION')).toBe('7d')
    expect(settingDefault('KAFKA_BROKERS')).toBe('127.0.0.1:9092')
    expect(settingDefault('DATABASE_URL')).toBeUndefined()
  })
})

describe('the CLI on bad settings', () => {
  it.each([
    [['kafka', 'status'], { MAX_MESSAGE_AGE: 'abc' }, 'invalid setting MAX_MESSAGE_AGE="abc": expected a whole number of seconds, 0 or more'],
    [['kafka', 'status'], { PORT: 'http' }, 'invalid setting PORT="http": expected a port number from 0 to 65535'],
    [['kafka', 'status', '--brokers', 'nope'], {}, 'invalid setting KAFKA_BROKERS="nope"'],
    [['kafka', 'start', '--port', 'notaport'], {}, 'invalid value for --port: "notaport"'],
    [['bench', '--only', 'sink', '--messages', '5000'], {}, '--only sink measures neither (it preloads samples of its own): leave one of them out'],
    [['bench', '--only', 'latency', '--messages', '5000'], {}, '--only latency measures neither (it sends events at fixed rates for a fixed time): leave one of them out'],
    [['kafka', 'status'], { KPIPE_HASH_KEY: 'tiny-secret' }, 'invalid setting KPIPE_HASH_KEY="<redacted>"'],
  ])('kpipe %j with %j exits 2 with one line', (args, env, line) => {
    const result = runKpipe(args, env)
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
    expect(result.stderr).toContain(line)
    expect(result.stderr).not.toMatch(/\n\s+at /)
    expect(result.stderr).not.toContain('tiny-secret')
  })

  it('an unknown command or option exits 2', () => {
    expect(runKpipe(['frobnicate']).code).toBe(2)
    expect(runKpipe(['kafka', 'status', '--nope']).code).toBe(2)
  })

  it('lists every command of SPEC.md in --help', () => {
    const result = runKpipe(['--help'])
    expect(result.code).toBe(0)
    for (const command of ['up', 'kafka', 'topics', 'logins', 'metrics', 'dashboard', 'tail', 'audit', 'bench']) {
      expect(result.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'))
    }
  })
})
