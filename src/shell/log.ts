import { pino, type Logger } from 'pino'
import pretty from 'pino-pretty'

export type { Logger }

const secrets = new Set<string>()

/** Registers secret values (passwords, keys, tokens) that must never reach a log line. */
export function registerSecrets(values: Iterable<string>): void {
  for (const v of values) if (v.length >= 4) secrets.add(v)
}

export function redactSecrets(text: string): string {
  let out = text
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('<redacted>')
  return out
}

/**
 * pino to stderr (stdout is kept for data, e.g. `kpipe tail`): human-readable on a terminal,
 * JSON lines otherwise. Known secret values are scrubbed from every message and error.
 */
export function createLogger(level = 'info', name = 'kpipe', tee?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    redact: { paths: ['password', '*.password', 'sasl.password', 'hashKey', 'token'], censor: '<redacted>' },
    hooks: {
      logMethod(args, method) {
        if (secrets.size > 0) {
          args = args.map((a) => {
            if (typeof a === 'string') return redactSecrets(a)
            if (a instanceof Error) {
              const copy = new Error(redactSecrets(a.message))
              copy.name = a.name
              copy.stack = a.stack === undefined ? undefined : redactSecrets(a.stack)
              return copy
            }
            if (a && typeof a === 'object') return JSON.parse(redactSecrets(JSON.stringify(a))) as unknown
            return a
          }) as typeof args
        }
        method.apply(this, args)
      },
    },
  }
  const main: pino.DestinationStream = process.stderr.isTTY
    ? pretty({ destination: 2, sync: true, colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' })
    : pino.destination({ dest: 2, sync: false })
  if (!tee) return pino(options, main)
  return pino(options, pino.multistream([{ stream: main, level: level as pino.Level }, { stream: tee, level: level as pino.Level }]))
}
