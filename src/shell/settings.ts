import { z } from 'zod'
import { SettingError } from './errors.ts'
import { parseDuration } from './duration.ts'

/**
 * Every setting of kpipe, in one zod schema: the single source of truth for validation, for
 * defaults and for the settings table in the README (a test keeps that table in step).
 * Each field carries `expected` (said when a value is rejected) and, for secrets, `secret`.
 */
export interface SettingMeta {
  description: string
  expected: string
  secret?: boolean
}

const meta = (m: SettingMeta) => m as SettingMeta & Record<string, unknown>

const positiveInt = (max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(1).max(max)
const boolText = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes')
const duration = (minMs: number, bareUnit: 'ms' | 's' = 'ms') =>
  z.string().transform((text, ctx) => {
    const ms = parseDuration(text, bareUnit)
    if (ms === undefined || ms < minMs) {
      ctx.addIssue({ code: 'custom', message: 'bad duration' })
      return z.NEVER
    }
    return ms
  })
const hostPort = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/
const brokerList = z.string().transform((text, ctx) => {
  const brokers = text.split(',').map((b) => b.trim()).filter(Boolean)
  if (brokers.length === 0 || !brokers.every((b) => hostPort.test(b) && Number(b.slice(b.lastIndexOf(':') + 1)) <= 65535)) {
    ctx.addIssue({ code: 'custom', message: 'bad broker list' })
    return z.NEVER
  }
  return brokers
})
const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/)
const topicExpected = 'a Kafka topic name (letters, digits, ".", "_" or "-", at most 249)'
const topic = (name: string, description: string) =>
  topicName.default(name).meta(meta({ description, expected: topicExpected }))

export const settingsSchema = z.object({
  KAFKA_BROKERS: brokerList.default(['127.0.0.1:9092']).meta(meta({
    description: 'Kafka bootstrap brokers, comma-separated. Unset, `kpipe up` starts a local broker.',
    expected: 'a comma-separated list of host:port, e.g. 127.0.0.1:9092',
  })),
  KAFKA_CLIENT_ID: z.string().regex(/^[A-Za-z0-9._-]+$/).default('kpipe').meta(meta({
    description: 'Client id prefix sent to the brokers.',
    expected: 'letters, digits, ".", "_" or "-"',
  })),
  KAFKA_SSL: boolText.default(false).meta(meta({
    description: 'Connect to Kafka with TLS.',
    expected: 'true or false',
  })),
  KAFKA_SSL_CA_FILE: z.string().min(1).optional().meta(meta({
    description: 'PEM file of the CA that signed the brokers\' certificates (default: the system CAs).',
    expected: 'a file path',
  })),
  KAFKA_SSL_CERT_FILE: z.string().min(1).optional().meta(meta({
    description: 'PEM client certificate, for brokers that require mutual TLS.',
    expected: 'a file path',
  })),
  KAFKA_SSL_KEY_FILE: z.string().min(1).optional().meta(meta({
    description: 'PEM private key of the client certificate.',
    expected: 'a file path',
  })),
  KAFKA_SASL_MECHANISM: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']).optional().meta(meta({
    description: 'SASL mechanism; unset means no SASL.',
    expected: 'PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512',
  })),
  KAFKA_SASL_USERNAME: z.string().min(1).optional().meta(meta({
    description: 'SASL user name.',
    expected: 'a non-empty user name',
  })),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional().meta(meta({
    description: 'SASL password. Never logged.',
    expected: 'a non-empty password',
    secret: true,
  })),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//).optional().meta(meta({
    description: 'PostgreSQL connection URL (TLS through `sslmode`). Unset means embedded PGlite under `KPIPE_DATA_DIR/pg`.',
    expected: 'a postgres:// or postgresql:// URL',
    secret: true,
  })),
  KPIPE_DATA_DIR: z.string().min(1).default('.kpipe').meta(meta({
    description: 'Where the local broker, the embedded database and the local hash key live.',
    expected: 'a directory path',
  })),
  KPIPE_HASH_KEY: z.string().min(16).optional().meta(meta({
    description: 'Secret key of the HMAC-SHA-256 that pseudonymises device ids. Required by `kpipe logins process`; `kpipe up` creates and keeps one.',
    expected: 'a secret of at least 16 characters',
    secret: true,
  })),
  MAX_MESSAGE_AGE: z.coerce.number().int().min(0).default(60).meta(meta({
    description: 'Login events older than this many seconds go to `cleaned-data` as stale; 0 turns the check off.',
    expected: 'a whole number of seconds, 0 or more',
  })),
  ALLOWED_APP_VERSIONS: z.string().transform((t) => t.split(',').map((v) => v.trim()).filter(Boolean))
    .pipe(z.array(z.string()).min(1)).default(['2.3.0']).meta(meta({
      description: 'App versions the processor accepts, comma-separated; others go to `cleaned-data`.',
      expected: 'a comma-separated list of versions, e.g. 2.3.0,2.4.0',
    })),
  SUMMARY_PUBLISH_INTERVAL: positiveInt().default(1000).meta(meta({
    description: 'Publish a summary every this many processed messages (and at least every 10 s while anything changed).',
    expected: 'a whole number of messages, 1 or more',
  })),
  METRICS_MODE: z.enum(['interval', 'per-message']).default('interval').meta(meta({
    description: '`interval`: processing metrics every second; `per-message`: one metrics record per input message.',
    expected: 'interval or per-message',
  })),
  METRICS_INTERVAL: duration(100).default(500).meta(meta({
    description: 'Host metrics sampling interval (`250ms`, `1s` or milliseconds; at least 100 ms).',
    expected: 'a duration of at least 100ms, e.g. 500ms or 1s',
  })),
  METRICS_RETENTION: duration(60_000, 's').default(7 * 86_400_000).meta(meta({
    description: 'The sink deletes `performance` rows older than this (`7d`, `12h`, or seconds).',
    expected: 'a duration of at least 1m, e.g. 7d',
  })),
  LOGIN_ACTIVITY_RETENTION: duration(60_000, 's').default(30 * 86_400_000).meta(meta({
    description: 'The login sink deletes `login_activity` minutes older than this (`30d`, `12h`, or seconds).',
    expected: 'a duration of at least 1m, e.g. 30d',
  })),
  HOST: z.string().min(1).default('127.0.0.1').meta(meta({
    description: 'Address the dashboard binds to. Any address other than loopback requires `KPIPE_DASHBOARD_TOKEN`.',
    expected: 'an IP address or host name',
  })),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080).meta(meta({
    description: 'Dashboard port.',
    expected: 'a port number from 0 to 65535',
  })),
  KPIPE_DASHBOARD_TOKEN: z.string().min(16).optional().meta(meta({
    description: 'Bearer token the dashboard requires when bound to a non-loopback address.',
    expected: 'a token of at least 16 characters',
    secret: true,
  })),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').meta(meta({
    description: 'Log level (pino).',
    expected: 'fatal, error, warn, info, debug, trace or silent',
  })),
  TOPIC_LOGINS: topic('user-login', 'Raw login events (input of the processor).'),
  TOPIC_PROCESSED: topic('processed-output', 'Transformed login events.'),
  TOPIC_ERRORS: topic('processed-errors', 'Login error records with the raw payload.'),
  TOPIC_CLEANED: topic('cleaned-data', 'Filtered-out login events with the reason.'),
  TOPIC_SUMMARY: topic('summary-output', 'Processor summary statistics.'),
  TOPIC_METRICS: topic('metrics-output', 'Processor metrics.'),
  TOPIC_PERFORMANCE: topic('performance', 'Host metrics samples.'),
  TOPIC_PERFORMANCE_ERRORS: topic('performance-errors', 'Host metrics records the sink could not decode.'),
})

export type Settings = z.output<typeof settingsSchema>
export type SettingName = keyof typeof settingsSchema.shape
export const SETTING_NAMES = Object.keys(settingsSchema.shape) as SettingName[]

export function settingMeta(name: SettingName): SettingMeta {
  return settingsSchema.shape[name].meta() as unknown as SettingMeta
}

/** The default as a user would type it, or undefined for settings without one. */
export function settingDefault(name: SettingName): string | undefined {
  const def = (settingsSchema.shape[name] as z.ZodType).def as { type: string; defaultValue?: unknown }
  if (def.type !== 'default') return undefined
  const value = typeof def.defaultValue === 'function' ? (def.defaultValue as () => unknown)() : def.defaultValue
  if (Array.isArray(value)) return value.join(',')
  if (name === 'METRICS_INTERVAL') return `${value}ms`
  if (name === 'METRICS_RETENTION') return '7d'
  if (name === 'LOGIN_ACTIVITY_RETENTION') return '30d'
  return String(value)
}

/**
 * Reads the settings from the environment, with command-line flags (already mapped to setting
 * names) on top. Empty values count as unset. Throws a SettingError naming the first bad one.
 */
export function loadSettings(
  env: Record<string, string | undefined> = process.env,
  overrides: Partial<Record<SettingName, string | undefined>> = {},
): Settings {
  const raw: Record<string, string> = {}
  for (const name of SETTING_NAMES) {
    const value = overrides[name] ?? env[name]
    if (value !== undefined && value !== '') raw[name] = value
  }
  const result = settingsSchema.safeParse(raw)
  if (result.success) return result.data
  const issue = result.error.issues[0]!
  const name = String(issue.path[0]) as SettingName
  const m = settingMeta(name)
  throw new SettingError(name, raw[name] ?? '', m.expected, m.secret)
}

/**
 * Values of secret settings, so that log redaction can find them wherever they appear; for
 * DATABASE_URL also its password alone (a driver may quote it without the rest of the URL).
 */
export function secretValues(settings: Settings): string[] {
  const values = SETTING_NAMES.filter((n) => settingMeta(n).secret)
    .map((n) => settings[n])
    .filter((v): v is string => typeof v === 'string' && v.length > 0)
  if (settings.DATABASE_URL) {
    try {
      const password = new URL(settings.DATABASE_URL).password
      if (password) values.push(password, decodeURIComponent(password))
    } catch {
      // not a URL the WHATWG parser reads: the whole value is still redacted
    }
  }
  return values
}
