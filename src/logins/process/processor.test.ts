import { describe, expect, it } from 'vitest'
import { createLogger } from '../../shell/log.ts'
import { waitFor } from '../../../test/support/cli.ts'
import { pseudonymiseDeviceId } from '../core/pseudonymise.ts'
import { auditLogins } from '../audit/audit-logins.ts'
import { readAhead, runProcessor } from './run-processor.ts'
import { HASH_KEY, connectionOf, createLoginTopics, header, loginEnv, produceRaw, readAll, settingsOf } from '../logins.fixture.ts'
import type { Settings } from '../../shell/settings.ts'
import type { LoginProcessor } from './login-processor.ts'

const log = createLogger('silent')
const nowS = () => Math.floor(Date.now() / 1000)
const event = (i: number, overrides: Record<string, unknown> = {}) => JSON.stringify({
  user_id: `user-${i}`, app_version: '2.3.0', device_type: i % 2 ? 'android' : 'iOS', ip: `10.1.${i % 256}.${(i * 7) % 256}`,
  locale: i % 3 ? 'RU' : 'US', device_id: `593-47-${String(i).padStart(4, '0')}`, timestamp: String(nowS()), ...overrides,
})

/** The mixed input: what each record is, and where it must end. */
function mixedInput(): { values: (string | Buffer | undefined)[]; expected: { topic: 'processed' | 'cleaned' | 'errors'; detail: string }[] } {
  const values: (string | Buffer | undefined)[] = []
  const expected: { topic: 'processed' | 'cleaned' | 'errors'; detail: string }[] = []
  const add = (value: string | Buffer | undefined, topic: 'processed' | 'cleaned' | 'errors', detail: string) => {
    values.push(value)
    expected.push({ topic, detail })
  }
  for (let i = 0; i < 300; i++) {
    switch (i % 10) {
      case 0: add(event(i, { timestamp: String(nowS() - 3600) }), 'cleaned', 'stale'); break
      case 1: add(event(i, { app_version: '2.2.0' }), 'cleaned', 'app_version'); break
      case 2: add(event(i).slice(0, 30), 'errors', 'invalid_json'); break
      case 3: add(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'errors', 'invalid_json'); break
      case 4: add(event(i, { locale: null }), 'errors', 'missing_fields'); break
      case 5: add(event(i, { ip: '1.2.3.4.5' }), 'errors', 'invalid_field'); break
      case 6: add(event(i, { ip: '2001:db8:85a3::8a2e:370:7334' }), 'processed', 'ipv6'); break
      default: add(event(i), 'processed', 'valid')
    }
  }
  add(undefined, 'errors', 'invalid_json')
  add('[1,2]', 'errors', 'invalid_json')
  return { values, expected }
}

async function processUntil(settings: Settings, total: number, extra: Partial<Parameters<typeof runProcessor>[0]> = {}): Promise<LoginProcessor> {
  const stop = new AbortController()
  let processor: LoginProcessor | undefined
  const running = runProcessor({ settings, log, groupId: `g-${settings.TOPIC_LOGINS}`, from: 'earliest', exactlyOnce: false, instanceId: 'test-1', signal: stop.signal, maxBatchSize: 100, ...extra })
    .then((p) => (processor = p))
  try {
    // a processor that stops early (a fatal error) fails the wait at once, with its error
    const stoppedEarly = running.then(() => Promise.reject(new Error('the processor stopped before every input was processed')))
    await Promise.race([
      waitFor(async () => {
        // the processor's totals become visible once it stops; meanwhile watch the outputs
        const audit = await auditLogins(connectionOf(settings), settings)
        return audit.missing === 0 && audit.inputs === total
      }, 45_000, `all ${total} inputs processed`),
      stoppedEarly,
    ])
  } catch (error) {
    // stopped and awaited here, whatever failed: its own rejection is never left unhandled
    stop.abort()
    await running.catch(() => {})
    throw error
  }
  stop.abort()
  await running
  return processor!
}

describe('kpipe logins process on a real broker', () => {
  it.each([{ rulesThread: true }, { rulesThread: false }])('routes every input to exactly one of the three topics, with content, keys and lineage headers; summary and metrics follow (rules on a thread of their own: $rulesThread)', async ({ rulesThread }) => {
    const env = loginEnv({ SUMMARY_PUBLISH_INTERVAL: '100' })
    const settings = settingsOf(env)
    await createLoginTopics(settings)
    const { values, expected } = mixedInput()
    await produceRaw(settings, values, (i) => `key-${i}`)

    // batches of 50, two to a transaction: a summary is due (100 received) with every transaction after the first
    const processor = await processUntil(settings, values.length, { exactlyOnce: true, rulesThread, maxBatchSize: 50 })

    const [processed, cleaned, errors] = await Promise.all([readAll(settings, settings.TOPIC_PROCESSED), readAll(settings, settings.TOPIC_CLEANED), readAll(settings, settings.TOPIC_ERRORS)])
    // where did each input go? (input i is the i-th record produced; keys tell them apart)
    const inputs = await readAll(settings, settings.TOPIC_LOGINS)
    const indexOf = new Map(inputs.map((r) => [`${r.partition}/${r.offset}`, Number(r.key!.toString().slice(4))]))
    const routed = new Map<number, { topic: string; record: (typeof processed)[number] }[]>()
    for (const [topic, records] of [['processed', processed], ['cleaned', cleaned], ['errors', errors]] as const) {
      for (const record of records) {
        expect(header(record, 'source-topic')).toBe(settings.TOPIC_LOGINS)
        const i = indexOf.get(`${header(record, 'source-partition')}/${header(record, 'source-offset')}`)
        expect(i).toBeDefined()
        routed.set(i!, [...(routed.get(i!) ?? []), { topic, record }])
      }
    }
    expect(routed.size).toBe(values.length)
    for (const [i, outs] of routed) {
      expect(outs, `input ${i}`).toHaveLength(1)
      const { topic, record } = outs[0]!
      expect(topic, `input ${i} (${expected[i]!.detail})`).toBe(expected[i]!.topic)
      const value = JSON.parse(record.value!.toString()) as Record<string, unknown>
      if (topic === 'processed') {
        expect(record.key!.toString()).toBe(`user-${i}`)
        expect(value.device_id).toBe(pseudonymiseDeviceId(HASH_KEY, `593-47-${String(i).padStart(4, '0')}`))
        expect(value.ip).toBe(expected[i]!.detail === 'ipv6' ? '2001:db8:85a3:xxxx:xxxx:xxxx:xxxx:xxxx' : `10.1.${i % 256}.xxx`)
        expect(typeof value.timestamp).toBe('number')
        expect(value.login_time).toBe(new Date((value.timestamp as number) * 1000).toISOString())
      } else if (topic === 'cleaned') {
        expect(value.reason).toBe(expected[i]!.detail)
        expect((value.event as Record<string, unknown>).ip).toMatch(/\.xxx$/)
        expect(record.value!.toString()).not.toContain('593-47-')
      } else {
        expect(value.error_type).toBe(expected[i]!.detail)
        expect(value.source).toEqual({ topic: settings.TOPIC_LOGINS, partition: Number(header(record, 'source-partition')), offset: Number(header(record, 'source-offset')) })
        const raw = values[i]
        if (Buffer.isBuffer(raw)) expect(Buffer.from(value.raw as string, 'base64')).toEqual(raw)
        else expect(value.raw).toBe(raw ?? '')
        expect(value.user_id).toBe(['missing_fields', 'invalid_field'].includes(expected[i]!.detail) ? `user-${i}` : null)
      }
    }

    // the counts: what the processor says, and what it published last
    const count = (detail: string) => expected.filter((e) => e.detail === detail).length
    const totals = {
      received: values.length,
      processed: count('valid') + count('ipv6'),
      filtered: { stale: count('stale'), app_version: count('app_version') },
      errors: { invalid_json: count('invalid_json'), missing_fields: count('missing_fields'), invalid_field: count('invalid_field') },
    }
    expect(processor.total.toJSON()).toMatchObject(totals)
    const summaries = (await readAll(settings, settings.TOPIC_SUMMARY)).map((r) => JSON.parse(r.value!.toString()) as { instance_id: string; total: Record<string, unknown>; window: { received: number } })
    expect(summaries.length).toBeGreaterThanOrEqual(3) // every 100 inputs, and the final one
    const last = summaries[summaries.length - 1]!
    expect(last.instance_id).toBe('test-1')
    expect(last.total).toMatchObject({ ...totals, device_types: { android: expect.any(Number), iOS: expect.any(Number) } })
    expect(summaries.reduce((n, s) => n + s.window.received, 0)).toBe(values.length)

    const metrics = (await readAll(settings, settings.TOPIC_METRICS)).map((r) => JSON.parse(r.value!.toString()) as Record<string, unknown>)
    expect(metrics.length).toBeGreaterThan(0)
    expect(metrics[0]).toMatchObject({ mode: 'interval', instance_id: 'test-1', interval_ms: expect.any(Number), latency_ms: { p50: expect.any(Number), p99: expect.any(Number) } })
    expect(metrics.reduce((n, m) => n + (m.messages_in as number), 0)).toBeLessThanOrEqual(values.length)
  })

  it('METRICS_MODE=per-message: one metrics record per input, with its lineage', async () => {
    const settings = settingsOf(loginEnv({ METRICS_MODE: 'per-message' }))
    await createLoginTopics(settings)
    const values = Array.from({ length: 50 }, (_, i) => event(i))
    await produceRaw(settings, values)
    await processUntil(settings, values.length)
    const metrics = await readAll(settings, settings.TOPIC_METRICS)
    expect(metrics).toHaveLength(50)
    const ids = new Set<string>()
    for (const r of metrics) {
      const m = JSON.parse(r.value!.toString()) as { mode: string; message_id: string; processing_time: number; topic: string; timestamp: string }
      expect(m.mode).toBe('per-message')
      expect(m.topic).toBe(settings.TOPIC_LOGINS)
      expect(m.message_id).toBe(`${settings.TOPIC_LOGINS}/${header(r, 'source-partition')}/${header(r, 'source-offset')}`)
      expect(m.processing_time).toBeGreaterThanOrEqual(0)
      expect(Number.isNaN(Date.parse(m.timestamp))).toBe(false)
      ids.add(m.message_id)
    }
    expect(ids.size).toBe(50)
  })
})

describe('how far the processor reads ahead', () => {
  it('fetches of 1 MiB per 5,000 records of its batch (256 KiB at least), and stream room for half a batch', () => {
    expect(readAhead(5000)).toEqual({ fetchBytes: 1024 * 1024, records: 2500 })
    expect(readAhead(10_000)).toEqual({ fetchBytes: 2 * 1024 * 1024, records: 5000 })
    expect(readAhead(101)).toEqual({ fetchBytes: 256 * 1024, records: 51 })
  })
})
