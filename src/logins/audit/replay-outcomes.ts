import { headerText, type ConsumedRecord } from '../../shell/kafka/records.ts'
import { SOURCE_OFFSET, SOURCE_PARTITION } from '../../shell/kafka/lineage.ts'

export type Outcome = 'processed' | 'cleaned' | 'errors'

export interface ReplayAudit {
  /** replayed copies in the input topic (records with a `replay-of` header) */
  copies: number
  /** distinct original inputs replayed at least once */
  originals: number
  /** per original: the outcome of its latest copy (`pending`: not processed yet) */
  latest: Record<Outcome | 'pending', number>
  /** copies with no output, or more than one (each must land in exactly one output topic) */
  copiesMissing: number
  copiesDuplicated: number
  /** replays by `replay-id`: how many copies each sent */
  byReplay: Record<string, number>
}

/**
 * What the audit says about replays: the input topic holds originals and their copies (the
 * copies carry `replay-of` and `replay-id`); each copy is an input like any other and must
 * land in exactly one output, and an original's latest outcome is its latest copy's.
 */
export class ReplayOutcomes {
  /** copy "partition/offset" → its original "topic/partition/offset", when it was written */
  readonly #copies = new Map<string, { of: string; timestamp: bigint }>()
  readonly #outputs = new Map<string, Outcome[]>()
  readonly #byReplay: Record<string, number> = {}

  noteInput(record: ConsumedRecord): void {
    const of = headerText(record, 'replay-of')
    if (of === undefined) return
    this.#copies.set(`${record.partition}/${record.offset}`, { of, timestamp: record.timestamp })
    const id = headerText(record, 'replay-id') ?? '(none)'
    this.#byReplay[id] = (this.#byReplay[id] ?? 0) + 1
  }

  /** An output of an input the audit read, by its lineage headers. */
  noteOutput(outcome: Outcome, headers: Map<string, Buffer>): void {
    if (this.#copies.size === 0) return
    const key = `${headers.get(SOURCE_PARTITION)?.toString('utf8')}/${headers.get(SOURCE_OFFSET)?.toString('utf8')}`
    if (!this.#copies.has(key)) return
    const list = this.#outputs.get(key)
    if (list) list.push(outcome)
    else this.#outputs.set(key, [outcome])
  }

  report(): ReplayAudit {
    const latestCopy = new Map<string, { copy: string; timestamp: bigint }>()
    let copiesMissing = 0
    let copiesDuplicated = 0
    for (const [copy, { of, timestamp }] of this.#copies) {
      const outputs = this.#outputs.get(copy)?.length ?? 0
      if (outputs === 0) copiesMissing++
      else if (outputs > 1) copiesDuplicated++
      const seen = latestCopy.get(of)
      if (!seen || seen.timestamp <= timestamp) latestCopy.set(of, { copy, timestamp })
    }
    const latest: ReplayAudit['latest'] = { processed: 0, cleaned: 0, errors: 0, pending: 0 }
    for (const { copy } of latestCopy.values()) latest[this.#outputs.get(copy)?.[0] ?? 'pending']++
    return { copies: this.#copies.size, originals: latestCopy.size, latest, copiesMissing, copiesDuplicated, byReplay: this.#byReplay }
  }
}
