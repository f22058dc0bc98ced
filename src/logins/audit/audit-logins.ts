import type { Settings } from '../../shell/settings.ts'
import type { KafkaConnection } from '../../shell/kafka/connection.ts'
import { headerText } from '../../shell/kafka/records.ts'
import { SOURCE_TOPIC } from '../../shell/kafka/lineage.ts'
import { readTopic } from '../../shell/kafka/topic-reader.ts'
import { readLineage } from '../../record-formats.ts'
import { ReplayOutcomes, type ReplayAudit } from './replay-outcomes.ts'

export type OutputRole = 'processed' | 'cleaned' | 'errors'

export interface PartitionAudit {
  partition: number
  inputs: number
  outputs: Record<OutputRole, number>
  missing: number
  duplicated: number
  /** the first few, to look at with `kpipe tail` */
  missingOffsets: number[]
  duplicatedOffsets: number[]
}

export interface AuditReport {
  topic: string
  partitions: PartitionAudit[]
  inputs: number
  missing: number
  duplicated: number
  /** the input's end offset per partition (index = partition) when the audit started: what it compared */
  endOffsets: number[]
  /** outputs of inputs written after the audit started (a live pipeline): counted apart, not a problem */
  newer: number
  /** outputs whose source offset is not among the inputs read (e.g. deleted by retention since) */
  unmatched: number
  /** replayed copies and the latest outcome of each replayed original */
  replays: ReplayAudit
}

const EXAMPLES = 10

/**
 * Conservation of the login pipeline: every offset of the input topic must appear exactly once,
 * by its lineage headers, across processed-output, cleaned-data and processed-errors (read
 * committed). The inputs are those below the input's end offsets when the audit starts; outputs of
 * later inputs (a live pipeline goes on writing) are counted apart as `newer`. The outputs are
 * read after the inputs, so a processor that keeps up has written those of the inputs compared;
 * one far behind leaves offsets not yet processed, which count as missing.
 */
export async function auditLogins(connection: KafkaConnection, settings: Settings, signal?: AbortSignal): Promise<AuditReport> {
  const input = settings.TOPIC_LOGINS
  const replays = new ReplayOutcomes()
  // per partition: the offsets read, and a count of outputs per offset (index = offset − first)
  const offsets = new Map<number, number[]>()
  let endOffsets: number[] = []
  const onEnds = (ends: readonly bigint[]) => void (endOffsets = ends.map(Number))
  await readTopic(connection, input, { from: 'earliest', signal, onEnds }, (record) => {
    let list = offsets.get(record.partition)
    if (!list) offsets.set(record.partition, (list = []))
    list.push(Number(record.offset))
    replays.noteInput(record)
  })
  const index = new Map<number, { first: number; seen: Uint8Array; outputs: Record<OutputRole, number> }>()
  for (const [partition, list] of offsets) {
    const first = list[0]!
    index.set(partition, { first, seen: new Uint8Array(list[list.length - 1]! - first + 1), outputs: { processed: 0, cleaned: 0, errors: 0 } })
  }
  let unmatched = 0
  let newer = 0
  const roles: [OutputRole, string][] = [['processed', settings.TOPIC_PROCESSED], ['cleaned', settings.TOPIC_CLEANED], ['errors', settings.TOPIC_ERRORS]]
  for (const [role, topic] of roles) {
    await readTopic(connection, topic, { from: 'earliest', readCommitted: true, signal }, (record) => {
      if (headerText(record, SOURCE_TOPIC) !== input) return
      const lineage = readLineage(record.headers)
      // the input of this output came after the audit's snapshot of the input (a live pipeline)
      if (lineage && Number(lineage.offset) >= (endOffsets[lineage.partition] ?? 0)) {
        newer++
        return
      }
      const entry = lineage && index.get(lineage.partition)
      const at = lineage ? Number(lineage.offset) - (entry?.first ?? 0) : -1
      if (!entry || !(at >= 0 && at < entry.seen.length)) {
        unmatched++
        return
      }
      entry.outputs[role]++
      if (entry.seen[at]! < 255) entry.seen[at]!++
      replays.noteOutput(role, record.headers)
    })
  }
  const partitions: PartitionAudit[] = []
  for (const [partition, list] of [...offsets].sort((a, b) => a[0] - b[0])) {
    const entry = index.get(partition)!
    const audit: PartitionAudit = { partition, inputs: list.length, outputs: entry.outputs, missing: 0, duplicated: 0, missingOffsets: [], duplicatedOffsets: [] }
    for (const offset of list) {
      const n = entry.seen[offset - entry.first]!
      if (n === 0) {
        if (audit.missing++ < EXAMPLES) audit.missingOffsets.push(offset)
      } else if (n > 1) {
        if (audit.duplicated++ < EXAMPLES) audit.duplicatedOffsets.push(offset)
      }
    }
    partitions.push(audit)
  }
  const sum = (f: (p: PartitionAudit) => number) => partitions.reduce((n, p) => n + f(p), 0)
  return { topic: input, partitions, inputs: sum((p) => p.inputs), missing: sum((p) => p.missing), duplicated: sum((p) => p.duplicated), endOffsets, newer, unmatched, replays: replays.report() }
}
