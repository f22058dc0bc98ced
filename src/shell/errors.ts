/**
 * Typed errors. A UserError is something the user can fix (a bad flag or setting): the CLI
 * prints its one-line message and exits 2. A SetupError is a missing or broken prerequisite
 * (no Java, a port in use, Maven failed): one clear message and exit 1. Anything else is a bug
 * or an unexpected failure and is logged with its stack.
 */
export class UserError extends Error {
  override name = 'UserError'
  readonly exitCode = 2
}

export class SetupError extends Error {
  override name = 'SetupError'
  readonly exitCode = 1
  constructor(
    message: string,
    /** what the user can do about it, printed on a second line */
    readonly hint?: string,
  ) {
    super(message)
  }
}

/** The setting (or flag), the value given and what is expected, in one line. */
export class SettingError extends UserError {
  override name = 'SettingError'
  constructor(
    readonly setting: string,
    readonly value: string,
    readonly expected: string,
    redact = false,
  ) {
    super(`invalid setting ${setting}=${JSON.stringify(redact ? '<redacted>' : value)}: expected ${expected}`)
  }
}
