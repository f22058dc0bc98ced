import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { SetupError } from '../errors.ts'

export const MIN_JAVA = 17

/** The java executable: $JAVA_HOME/bin/java when JAVA_HOME is set, else java from PATH. */
export function javaCommand(env: NodeJS.ProcessEnv = process.env): string {
  return env.JAVA_HOME ? join(env.JAVA_HOME, 'bin', 'java') : 'java'
}

/** Major version from `java -version` output: `1.8.0_392` → 8, `17.0.15` → 17, `21` → 21. */
export function parseJavaMajor(versionOutput: string): number | undefined {
  const match = /version "([^"]+)"/.exec(versionOutput)
  if (!match) return undefined
  const parts = match[1]!.split(/[.+_-]/)
  const first = Number(parts[0])
  if (!Number.isInteger(first)) return undefined
  return first === 1 ? Number(parts[1]) : first
}

/** Checks that Java 17 or newer is there; throws a SetupError that says what to install. */
export function requireJava(env: NodeJS.ProcessEnv = process.env): { command: string; major: number } {
  const command = javaCommand(env)
  const result = spawnSync(command, ['-version'], { encoding: 'utf8' })
  if (result.error) {
    throw new SetupError(
      `Java was not found (${command}); the local Kafka broker needs Java ${MIN_JAVA} or newer`,
      'install a JDK 17+ (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17), or set KAFKA_BROKERS to use an existing cluster',
    )
  }
  const major = parseJavaMajor(`${result.stderr}${result.stdout}`)
  if (major === undefined || major < MIN_JAVA) {
    throw new SetupError(
      `Java ${major ?? '(unknown version)'} found at ${command}; Apache Kafka 4 needs Java ${MIN_JAVA} or newer`,
      'install a JDK 17+ and put it first on PATH or point JAVA_HOME at it',
    )
  }
  return { command, major }
}
