import { writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Writable } from 'node:stream'
import { pino, stdSerializers, type Logger } from 'pino'
import type PinoPretty from 'pino-pretty'

export type { Logger }

const secrets = new Set<string>()
/** each secret as it appears inside a JSON string (quotes, backslashes and controls escaped) */
const escapedSecrets = new Set<string>()

/** Registers secret values (passwords, keys, tokens) that must never reach a log line. */
export function registerSecrets(values: Iterable<string>): void {
  for (const v of values) {
    if (v.length < 4) continue
    secrets.add(v)
    const escaped = JSON.stringify(v).slice(1, -1)
    if (escaped !== v) escapedSecrets.add(escaped)
  }
}

export function redactSecrets(text: string): string {
  let out = text
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('<redacted>')
  for (const s of escapedSecrets) if (out.includes(s)) out = out.split(s).join('<redacted>')
  return out
}

/** True for the levels at which an error's stack belongs in the log. */
export function stacksWanted(level: string | undefined): boolean {
  return level === 'debug' || level === 'trace'
}

/** An error in one line: its message, then the messages of its causes (and of an AggregateError's first error). */
export function errorLine(error: unknown): string {
  const parts: string[] = []
  let current: unknown = error
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const message = (current instanceof Error ? current.message : String(current)).trim().replace(/\.$/, '')
    if (message && !parts.some((p) => p.includes(message))) parts.push(message)
    if (!(current instanceof Error)) break
    current = current instanceof AggregateError && current.errors.length > 0 ? current.errors[0] : current.cause
  }
  return parts.join(': ') || (error instanceof Error ? error.name : String(error))
}

/** The `err` field without its stack: type, the one-line message, and the code when there is one. */
function briefError(error: unknown): unknown {
  if (!(error instanceof Error)) return error
  const code = (error as { code?: unknown }).code
  return { type: error.name, message: errorLine(error), ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}) }
}

/** A destination that scrubs known secret values from each serialized line before it is written. */
function redacting(stream: pino.DestinationStream): pino.DestinationStream {
  return {
    write(line: string) {
      try {
        stream.write(secrets.size > 0 ? redactSecrets(line) : line)
      } catch {
        // a log line that cannot be written (the terminal closed) must not stop the program
      }
    },
  }
}

/**
 * stderr as pino's destination; write errors (EIO once the terminal is gone) are dropped, not
 * thrown. On a terminal each entry is one line: an error's message is appended to the message
 * (unless it says it already) instead of an indented object, except at debug, where the stack shows.
 */
function stderrDestination(stacks: boolean): pino.DestinationStream {
  if (process.stderr.isTTY) {
    // loaded for a terminal only: a process whose log is JSON lines (a service, the bench's processor) holds none of it
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty
    return pretty({
      destination: new Writable({
        write(chunk: Buffer | string, _encoding, done) {
          tryWrite(chunk)
          done()
        },
      }),
      colorize: true,
      ignore: stacks ? 'pid,hostname' : 'pid,hostname,err',
      translateTime: 'HH:MM:ss.l',
      messageFormat: (entry, messageKey) => {
        const message = String(entry[messageKey] ?? '')
        const error = (entry.err as { message?: string } | undefined)?.message
        return !stacks && error && !message.includes(error) ? `${message} (${error})` : message
      },
    })
  }
  const stream = pino.destination({ dest: 2, sync: false })
  stream.on('error', () => {})
  return stream
}

function tryWrite(text: Buffer | string): void {
  try {
    if (typeof text === 'string') writeSync(2, text)
    else writeSync(2, text)
  } catch {
    // see stderrDestination
  }
}

/**
 * pino to stderr (stdout is kept for data, e.g. `kpipe tail`): human-readable on a terminal,
 * JSON lines otherwise. Errors in the `err` field are one line (message and causes) unless the
 * level is debug or trace, which adds the stack. Known secret values are scrubbed from the
 * serialized line, so a message, an error, a cause or any field carrying one is covered alike.
 */
export function createLogger(level = 'info', name = 'kpipe', tee?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    redact: { paths: ['password', '*.password', 'sasl.password', 'hashKey', 'token'], censor: '<redacted>' },
    serializers: { err: stacksWanted(level) ? stdSerializers.errWithCause : briefError },
  }
  const main = stderrDestination(stacksWanted(level))
  if (!tee) return pino(options, redacting(main))
  return pino(options, pino.multistream([{ stream: redacting(main), level: level as pino.Level }, { stream: redacting(tee), level: level as pino.Level }]))
}
