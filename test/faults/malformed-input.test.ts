import { expect, it } from 'vitest'
import { connectionOf, createLoginTopics, loginEnv, settingsOf } from '../../src/logins/logins.fixture.ts'
import { MAX_ERROR_RECORD_BYTES } from '../../src/logins/core/error-record.ts'
import { sendChunks } from '../../src/shell/kafka/consumer-loop.ts'
import { createProducer } from '../../src/shell/kafka/producer.ts'
import { headerText, type OutputRecord } from '../../src/shell/kafka/records.ts'
import { readTopic } from '../../src/shell/kafka/topic-reader.ts'
import { exitOf, spawnKpipe, waitFor } from '../support/cli.ts'
import { auditWithCli, faultSeed, reportFigures, seconds } from './fault-support.ts'
import { MalformedLogins, type MalformedKind } from './malformed-logins.ts'
import { OffsetWatch } from './offset-watch.ts'

const COUNT = 12_000

/**
 * 12,000 malformed records of every kind a producer can get wrong, through `kpipe logins process`
 * in its default at-least-once mode: it must not crash, and every one must be in processed-errors,
 * with a raw payload that gives back the exact bytes of the input (or, for an input too big to
 * copy under the broker's record limit even as base64, its size and coordinates). At least once:
 * on a starved machine the consumer can lose its group membership or time out and read a batch
 * again, so an input may have two error records; none may have none.
 */
it('≥10,000 malformed records: the processor never crashes and every one is in processed-errors', async () => {
  const { seed, random } = faultSeed('malformed-input')
  const env = loginEnv({ LOG_LEVEL: 'warn' })
  const settings = settingsOf(env)
  await createLoginTopics(settings)
  const generator = new MalformedLogins(random)
  const byKind: Partial<Record<MalformedKind, number>> = {}
  const messages: OutputRecord[] = []
  let bytes = 0
  for (let i = 0; i < COUNT; i++) {
    const record = generator.next()
    byKind[record.kind] = (byKind[record.kind] ?? 0) + 1
    bytes += record.value?.length ?? 0
    messages.push({ topic: settings.TOPIC_LOGINS, ...(record.key === undefined ? {} : { key: record.key }), ...(record.value === undefined ? {} : { value: record.value }) })
  }
  const producer = createProducer(connectionOf(settings))
  try {
    // one send per chunk below the broker's request limit (huge strings are up to 700 KB each)
    for (const chunk of sendChunks(messages, 256 * 1024)) await producer.send({ messages: chunk })
  } finally {
    await producer.close()
  }
  // the exact bytes of every input, by partition/offset, as the broker stored them
  const inputs = new Map<string, Buffer | undefined>()
  await readTopic(connectionOf(settings), settings.TOPIC_LOGINS, { from: 'earliest' }, (r) => void inputs.set(`${r.partition}/${r.offset}`, r.value))
  expect(inputs.size).toBe(COUNT)

  const group = `faults-${settings.TOPIC_LOGINS}`
  const watch = new OffsetWatch(settings)
  const started = Date.now()
  const processor = spawnKpipe(['logins', 'process', '--group', group], env)
  try {
    await waitFor(async () => {
      if (processor.exitCode !== null || processor.signalCode !== null) throw new Error(`the processor exited (code ${processor.exitCode}, signal ${processor.signalCode}): ${processor.output().slice(-3000)}`)
      return (await watch.committedSum(group)) >= COUNT
    }, 300_000, 'every malformed record committed').catch((error: Error) => {
      throw new Error(`${error.message}; processor output: ${processor.output().slice(-3000)}`)
    })
  } finally {
    processor.kill('SIGTERM')
    await watch.close()
  }
  const processedMs = Date.now() - started
  expect((await exitOf(processor)).code, processor.output().slice(-3000)).toBe(0)

  const errorTypes: Record<string, number> = {}
  const seen = new Set<string>()
  let errorRecords = 0
  let rawMismatches = 0
  let sourceMismatches = 0
  let oversized = 0
  const encodings: Record<string, number> = {}
  const errorOffsets = new Set<string>()
  await readTopic(connectionOf(settings), settings.TOPIC_ERRORS, { from: 'earliest', readCommitted: true }, (r) => {
    errorRecords++
    errorOffsets.add(`${r.partition}/${r.offset}`)
    const at = `${headerText(r, 'source-partition')}/${headerText(r, 'source-offset')}`
    seen.add(at)
    const body = JSON.parse(r.value!.toString('utf8')) as { error_type: string; raw: string | null; raw_encoding: 'utf8' | 'base64' | 'omitted'; raw_bytes?: number; source: { partition: number; offset: number } }
    errorTypes[body.error_type] = (errorTypes[body.error_type] ?? 0) + 1
    encodings[body.raw_encoding] = (encodings[body.raw_encoding] ?? 0) + 1
    if (`${body.source.partition}/${body.source.offset}` !== at) sourceMismatches++
    const input = inputs.get(at) ?? Buffer.alloc(0)
    if (r.value!.length > MAX_ERROR_RECORD_BYTES) oversized++
    if (body.raw_encoding === 'omitted') {
      // only a payload that cannot fit even as base64 is left out; its size and coordinates remain
      if (body.raw_bytes !== input.length || Math.ceil(input.length / 3) * 4 < MAX_ERROR_RECORD_BYTES - 4096) rawMismatches++
    } else if (!Buffer.from(body.raw!, body.raw_encoding).equals(input)) rawMismatches++
  })
  let elsewhere = 0
  for (const topic of [settings.TOPIC_PROCESSED, settings.TOPIC_CLEANED]) {
    await readTopic(connectionOf(settings), topic, { from: 'earliest', readCommitted: true }, () => void elsewhere++)
  }
  const audit = auditWithCli(env, false)
  const endWatch = new OffsetWatch(settings)
  const errorTopicEnd = await endWatch.endSum([settings.TOPIC_ERRORS]).finally(() => endWatch.close())
  // what the processor warned about (a retried write, a failed commit, a rebalance): the reason for any duplicate
  const warnings = processor.output().split('\n').filter((line) => /^\{"level":(40|50)/.test(line)).map((line) => /"msg":"([^"]*)/.exec(line)?.[1] ?? line)
  reportFigures('malformed-input', { seed, records: COUNT, inputMegabytes: Math.round(bytes / 1e5) / 10, byKind, errorTypes, rawEncodings: encodings, errorRecords, duplicated: errorRecords - seen.size, auditDuplicated: audit.duplicated, errorTopicEnd, processedSeconds: seconds(processedMs), processorWarnings: warnings.slice(0, 20) })

  expect(seen.size).toBe(COUNT)
  expect(errorRecords).toBe(errorOffsets.size)
  expect(errorRecords).toBeGreaterThanOrEqual(COUNT)
  expect(rawMismatches).toBe(0)
  expect(sourceMismatches).toBe(0)
  expect(oversized).toBe(0)
  expect(elsewhere).toBe(0)
  expect(Object.keys(errorTypes).sort()).toEqual(['invalid_field', 'invalid_json', 'missing_fields'])
  expect(audit).toMatchObject({ inputs: COUNT, missing: 0, code: 0 })
})
