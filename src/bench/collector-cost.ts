import { setTimeout as delay } from 'node:timers/promises'
import type { BenchContext } from './bench-context.ts'
import { pollUntil, startPart } from './measure.ts'

export interface CollectorRun {
  cpuMsPerSample: number
  samples: number
  peakRssBytes: number
}

const INTERVAL_MS = 100

/**
 * `kpipe metrics collect` as a child at its lowest interval (100 ms): the CPU time of the whole
 * process (sampling /proc, serialising, producing; all threads) between its first sample on
 * the topic and `seconds` later, divided by the samples produced in between.
 */
export async function measureCollector(context: BenchContext, seconds: number): Promise<CollectorRun> {
  const topic = `${context.runId}-collector-performance`
  await context.probe.createTopics([topic], 1)
  const part = startPart(['metrics', 'collect', '--interval', `${INTERVAL_MS}ms`, '--host', `${context.runId}-collector`], context.childEnv({ TOPIC_PERFORMANCE: topic }))
  try {
    context.status('collector: waiting for its first sample')
    let first = 0
    await pollUntil(async () => {
      if (part.exited()) throw new Error(`the collector exited early:\n${part.output()}`)
      return (first = await context.probe.endOffset(topic)) >= 1
    }, 120_000, 'the collector\'s first sample')
    const cpuBefore = part.cpuMs()
    context.status(`collector: sampling every ${INTERVAL_MS} ms for ${seconds} s`)
    await delay(seconds * 1000)
    const cpuAfter = part.cpuMs()
    const last = await context.probe.endOffset(topic)
    const samples = last - first
    if (samples <= 0) throw new Error(`the collector produced no sample in ${seconds} s`)
    return { cpuMsPerSample: (cpuAfter - cpuBefore) / samples, samples, peakRssBytes: part.peakRss() }
  } finally {
    await part.stop()
    await context.probe.deleteTopics([topic]).catch(() => {})
  }
}
