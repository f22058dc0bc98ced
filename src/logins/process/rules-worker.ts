import { parentPort, workerData } from 'node:worker_threads'
import { applyRules, loginRules, type PackedValues, type PortableRules } from '../core/rules-batch.ts'

/** The rules thread (RulesThread): packed record values in, the rules' outcomes out, in the order they came. */
const port = parentPort
if (!port) throw new Error('rules-worker runs as a worker thread (RulesThread)')
const rules = loginRules(workerData as PortableRules)
port.on('message', ({ packed, nowMs }: { packed: PackedValues; nowMs: number }) => {
  const result = applyRules(packed, nowMs, rules)
  port.postMessage(result, [result.kinds.buffer, result.bytes.buffer, result.bounds.buffer, result.timestamps.buffer])
})
