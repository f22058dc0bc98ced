import type { DestinationStream } from 'pino'

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }

/**
 * A pino destination that keeps the last lines each part logged (by its `part` field), so that
 * `kpipe up` can show what a part said before it crashed.
 */
export class RecentLines implements DestinationStream {
  readonly #lines = new Map<string, string[]>()
  constructor(readonly keep = 20) {}

  write(line: string): void {
    let entry: { part?: string; level?: number; time?: number; msg?: string; err?: { message?: string } }
    try {
      entry = JSON.parse(line) as typeof entry
    } catch {
      return
    }
    const part = entry.part ?? 'up'
    const list = this.#lines.get(part) ?? []
    const time = entry.time ? new Date(entry.time).toISOString().slice(11, 23) : ''
    list.push(`${time} ${LEVELS[entry.level ?? 30] ?? entry.level} ${entry.msg ?? ''}${entry.err?.message && !entry.msg?.includes(entry.err.message) ? ` (${entry.err.message})` : ''}`)
    if (list.length > this.keep) list.shift()
    this.#lines.set(part, list)
  }

  of(part: string): string[] {
    return this.#lines.get(part) ?? []
  }
}
