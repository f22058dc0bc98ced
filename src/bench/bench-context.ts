import type { KafkaConnection } from '../shell/kafka/connection.ts'
import type { KafkaProbe } from './kafka-probe.ts'
import { byThreadKind, pollUntil, wholeProcessCpuMs, type PartProcess, type ThreadCpu } from './measure.ts'

/** What every section of the bench shares: the broker, a name prefix for its topics and groups, and the children's environment. */
export interface BenchContext {
  connection: KafkaConnection
  bootstrap: string
  probe: KafkaProbe
  /** unique per run: every topic and group of the run starts with it */
  runId: string
  /** the environment of a child part: ours, the broker, a hash key, quiet logs, and `overrides` (undefined removes a variable) */
  childEnv(overrides?: Record<string, string | undefined>): NodeJS.ProcessEnv
  status(line: string): void
  /** the broker's processes, where they run on this machine (loopbackListeners): their CPU time is measured with the processor's */
  brokerPids: number[]
}

export interface GroupProgress {
  /** ms (performance.now()) when the group's first commit was seen, and how much it covered */
  firstAt: number
  firstCommitted: number
  doneAt: number
  /** the part's CPU time (all threads, ms) at the first commit seen and at the last */
  firstCpuMs: number
  doneCpuMs: number
  /** the same, by thread */
  firstThreadsMs: ThreadCpu
  doneThreadsMs: ThreadCpu
  /** the broker's CPU time (BenchContext.brokerPids, all together, ms) at the first commit seen and at the last */
  firstBrokerMs: number
  doneBrokerMs: number
}

/**
 * Waits until `groupId` has committed `total` records of `topic`, polling the broker; fails early
 * when the part exits. The rate is taken from the first commit seen to the last, so the part's
 * start-up (Node, connecting, joining the group) is not in it; the bench reports that apart.
 */
export async function awaitGroup(context: BenchContext, part: PartProcess, groupId: string, topic: string, total: number, timeoutMs: number, label: string): Promise<GroupProgress> {
  let firstAt = 0
  let firstCommitted = 0
  let committed = 0
  let firstCpuMs = 0
  let firstThreadsMs = byThreadKind(() => 0)
  let firstBrokerMs = 0
  await pollUntil(async () => {
    if (part.exited()) throw new Error(`${label} exited early:\n${part.output()}`)
    committed = await context.probe.committed(groupId, topic)
    if (committed > 0 && firstAt === 0) {
      firstAt = performance.now()
      firstCommitted = committed
      firstCpuMs = part.cpuMs()
      firstThreadsMs = part.threadCpuMs()
      firstBrokerMs = brokerCpuMs(context)
    }
    context.status(`${label}: ${committed.toLocaleString('en')} of ${total.toLocaleString('en')} committed`)
    return committed >= total
  }, timeoutMs, `${label} to commit ${total} records (${committed} so far)`, 25)
  return { firstAt, firstCommitted, doneAt: performance.now(), firstCpuMs, doneCpuMs: part.cpuMs(), firstThreadsMs, doneThreadsMs: part.threadCpuMs(), firstBrokerMs, doneBrokerMs: brokerCpuMs(context) }
}

/** The broker's CPU time now, in ms: its processes' on this machine together (0 when it runs elsewhere, or has stopped). */
export function brokerCpuMs(context: BenchContext): number {
  let ms = 0
  for (const pid of context.brokerPids) {
    try {
      ms += wholeProcessCpuMs(pid)
    } catch {
      // a broker process that has ended
    }
  }
  return ms
}

/**
 * The records after the first commit seen, which the span from it to the last commit times; 0 when
 * that first commit already took more than half the input (a small `--messages`, `--quick`: one or
 * two batches). Pipelined, a part handles the next batch while it writes and commits the one
 * before, so what little is left after the first commit may all have been handled before it, and
 * a thread could show no work in the span: the callers report the whole process's figures from
 * its spawn, start-up included, instead.
 */
function timedRecords(progress: GroupProgress, total: number): number {
  const records = total - progress.firstCommitted
  return records * 2 >= total ? records : 0
}

/**
 * The part's CPU time per record between the first commit and the last, in microseconds: what a
 * record costs the part itself, much less sensitive than a rate to other load on the machine.
 */
export function cpuPerRecordUs(progress: GroupProgress, total: number): number {
  const records = timedRecords(progress, total)
  return records > 0 ? ((progress.doneCpuMs - progress.firstCpuMs) * 1000) / records : Number.NaN
}

/**
 * cpuPerRecordUs by thread; when the first commit took most of the input (timedRecords), each
 * thread's whole CPU time (start-up included) per record, as the bench then reports the process's.
 */
export function threadCpuPerRecordUs(progress: GroupProgress, total: number): ThreadCpu {
  const records = timedRecords(progress, total)
  return byThreadKind((kind) =>
    // (a thread that ended in between takes its time with it: never below 0)
    records > 0 ? (Math.max(0, progress.doneThreadsMs[kind] - progress.firstThreadsMs[kind]) * 1000) / records : (progress.doneThreadsMs[kind] * 1000) / total)
}

/**
 * The broker's CPU time per record over the same span as cpuPerRecordUs (from the spawn, `spawnBrokerMs`,
 * when the first commit took most of the input), in microseconds: what each record costs the
 * broker on the same cores, with the work of anything else that used the broker meanwhile.
 */
export function brokerCpuPerRecordUs(progress: GroupProgress, total: number, spawnBrokerMs: number): number {
  const records = timedRecords(progress, total)
  return records > 0 ? ((progress.doneBrokerMs - progress.firstBrokerMs) * 1000) / records : ((progress.doneBrokerMs - spawnBrokerMs) * 1000) / total
}

/** records per second between the first commit seen and the last */
export function steadyRate(progress: GroupProgress, total: number): number {
  const seconds = (progress.doneAt - progress.firstAt) / 1000
  const records = timedRecords(progress, total)
  // NaN when the first commit took most of the input: the caller times it from the spawn
  return records > 0 && seconds > 0 ? records / seconds : Number.NaN
}
