import { Command } from 'commander'
import { loadSettings, secretValues, type SettingName, type Settings } from '../shell/settings.ts'
import { createLogger, registerSecrets, type Logger } from '../shell/log.ts'
import { UserError } from '../shell/errors.ts'
import { exitImmediately } from '../shell/immediate-exit.ts'

export interface CommandContext {
  settings: Settings
  log: Logger
}

/** Flags that stand for settings, shared by every command: the flag wins over the environment. */
const GLOBAL_FLAGS: Record<string, SettingName> = {
  brokers: 'KAFKA_BROKERS',
  dataDir: 'KPIPE_DATA_DIR',
  logLevel: 'LOG_LEVEL',
}

/**
 * Settings from the environment with the command's flags on top. `flagSettings` maps the
 * command's own option names to setting names (e.g. `{ interval: 'METRICS_INTERVAL' }`).
 */
export function commandContext(command: Command, flagSettings: Record<string, SettingName> = {}): CommandContext {
  const options = command.optsWithGlobals() as Record<string, unknown>
  const overrides: Partial<Record<SettingName, string>> = {}
  for (const [flag, setting] of Object.entries({ ...GLOBAL_FLAGS, ...flagSettings })) {
    const value = options[flag]
    if (value !== undefined && value !== false) overrides[setting] = String(value)
  }
  const settings = loadSettings(process.env, overrides)
  registerSecrets(secretValues(settings))
  return { settings, log: createLogger(settings.LOG_LEVEL) }
}

/** Parses a whole number flag, or throws the one-line error naming the flag. */
export function intFlag(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value)
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new UserError(`invalid value for --${name}: ${JSON.stringify(value)}: expected a whole number from ${min} to ${max === Number.MAX_SAFE_INTEGER ? 'up' : max}`)
    }
    return n
  }
}

export function numberFlag(name: string, min = 0) {
  return (value: string): number => {
    const n = Number(value)
    if (value.trim() === '' || !Number.isFinite(n) || n < min) {
      throw new UserError(`invalid value for --${name}: ${JSON.stringify(value)}: expected a number of at least ${min}`)
    }
    return n
  }
}

/**
 * Resolves on the first SIGINT, SIGTERM or SIGHUP (a closed terminal, a dropped SSH session:
 * stopping cleanly matters most when nobody watches); a second one exits at once (code 130),
 * after killing what must not outlive the process (see beforeImmediateExit).
 */
export function untilSignal(onSignal?: (signal: NodeJS.Signals) => void): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false
    const handler = (signal: NodeJS.Signals) => {
      if (signal === 'SIGHUP') ignoreOutputErrors()
      if (received) exitImmediately(130)
      received = true
      onSignal?.(signal)
      resolve(signal)
    }
    process.on('SIGINT', handler)
    process.on('SIGTERM', handler)
    process.on('SIGHUP', handler)
  })
}

/** After a hang-up the terminal is gone: a failed write to it must not end the clean stop. */
function ignoreOutputErrors(): void {
  for (const stream of [process.stdout, process.stderr]) if (stream.listenerCount('error') === 0) stream.on('error', () => {})
}
