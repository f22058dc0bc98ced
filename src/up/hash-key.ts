import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/**
 * The local hash key of `kpipe up`: created once (32 random bytes, hex) under the data dir with
 * owner-only permissions and reused by every later run, so that pseudonyms stay stable.
 */
export function localHashKey(dataDir: string): { key: string; file: string; created: boolean } {
  const file = join(dataDir, 'hash-key')
  if (existsSync(file)) {
    const key = readFileSync(file, 'utf8').trim()
    if (key.length >= 16) return { key, file, created: false }
  }
  mkdirSync(dirname(file), { recursive: true })
  const key = randomBytes(32).toString('hex')
  writeFileSync(file, `${key}\n`, { mode: 0o600 })
  return { key, file, created: true }
}
