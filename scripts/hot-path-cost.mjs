// CPU time per message of the login processor's own work, without a broker (docs/benchmarks.md):
//   transform      transformLogin alone
//   handle         LoginProcessor.handle and .committed, in batches of 5,000 (outputs, headers, counts)
//   handle+encode  the same, then what the Kafka client does to every output before the network:
//                  serialisers, murmur2 partitioning and its record-batch encoding
// Run after `npm run build`: node scripts/hot-path-cost.mjs [messages]; MODES=transform R=9 to choose.
import { registerClientCorrection } from '../dist/shell/kafka/client-correction.js'
import { isLineage } from '../dist/shell/kafka/lineage.js'
import { LoginGenerator } from '../dist/logins/generate/login-generator.js'
import { transformLogin } from '../dist/logins/core/transform-login.js'
import { LoginProcessor } from '../dist/logins/process/login-processor.js'
import { loadSettings } from '../dist/shell/settings.js'
import { outputSerializers as S } from '../dist/shell/kafka/records.js'

// the client as kpipe runs it: its producer passes a lineage through, kpipe's encoder writes batches
registerClientCorrection()
const { createRecordsBatch, murmur2 } = await import('@platformatic/kafka')

const N = Number(process.argv[2] ?? 200_000)
const BATCH = 5000
const nowS = Math.floor(Date.now() / 1000)
const generator = new LoginGenerator(42, 0.05)
const records = []
for (let i = 0; i < N; i++) {
  const g = generator.next(nowS - 5)
  records.push({ topic: 'user-login', partition: i % 3, offset: BigInt(1_000_000 + i), timestamp: BigInt(Date.now()), key: g.key ? Buffer.from(g.key) : undefined, value: Buffer.from(g.value), headers: new Map() })
}
const settings = loadSettings({ KPIPE_HASH_KEY: 'k'.repeat(64), MAX_MESSAGE_AGE: '1800', LOG_LEVEL: 'silent' })
const rules = { hashKey: settings.KPIPE_HASH_KEY, maxMessageAgeSeconds: 1800, allowedAppVersions: new Set(settings.ALLOWED_APP_VERSIONS) }
const processor = new LoginProcessor(settings, 'cost')

/** What Producer#send of @platformatic/kafka 2.12.1, as kpipe corrects it, does per message before the network. */
function encode(outputs) {
  const byPartition = new Map()
  for (const m of outputs) {
    let serialised = m.headers
    if (!isLineage(m.headers)) {
      const headers = m.headers instanceof Map ? m.headers : new Map(Object.entries(m.headers ?? {}))
      serialised = new Map()
      for (const [k, v] of headers) serialised.set(S.headerKey(k), S.headerValue(v))
    }
    const key = S.key(m.key)
    const value = S.value(m.value)
    const partition = key ? (murmur2(key) >>> 0) % 3 : 0
    const at = `${m.topic}:${partition}`
    let list = byPartition.get(at)
    if (!list) byPartition.set(at, (list = []))
    list.push({ key, value, headers: serialised, topic: m.topic, partition, timestamp: undefined })
  }
  for (const list of byPartition.values()) createRecordsBatch(list, { producerId: 1n, producerEpoch: 0 })
}

const modes = {
  transform: () => {
    for (let i = 0; i < N; i++) transformLogin(records[i].value, Date.now(), rules)
  },
  handle: () => {
    for (let i = 0; i < N; i += BATCH) {
      const batch = records.slice(i, i + BATCH)
      processor.handle(batch)
      processor.committed(batch, [])
    }
  },
  'handle+encode': () => {
    for (let i = 0; i < N; i += BATCH) {
      const batch = records.slice(i, i + BATCH)
      encode(processor.handle(batch))
      processor.committed(batch, [])
    }
  },
}
for (const name of (process.env.MODES ?? Object.keys(modes).join(',')).split(',')) {
  modes[name]() // warm-up
  const runs = []
  for (let r = 0; r < Number(process.env.R ?? 5); r++) {
    const before = process.cpuUsage()
    modes[name]()
    const used = process.cpuUsage(before)
    runs.push((used.user + used.system) / N)
  }
  runs.sort((a, b) => a - b)
  console.log(`${name.padEnd(14)} CPU µs per message: median ${runs[runs.length >> 1].toFixed(2)}, min ${runs[0].toFixed(2)} (${runs.length} runs of ${N.toLocaleString('en')})`)
}
