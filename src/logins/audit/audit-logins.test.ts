import { Admin } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'
import { runKpipe } from '../../../test/support/cli.ts'
import { clientOptions } from '../../shell/kafka/connection.ts'
import { createProducer } from '../../shell/kafka/producer.ts'
import { lineageHeaders, type OutputRecord } from '../../shell/kafka/records.ts'
import { readTopic } from '../../shell/kafka/topic-reader.ts'
import { connectionOf, createLoginTopics, loginEnv, produceRaw, settingsOf } from '../logins.fixture.ts'
import { formatAudit } from '../../cli/commands/audit.ts'
import { auditLogins } from './audit-logins.ts'
import { REPLAY_READER_PREFIX } from '../replay/replay-kafka.ts'

describe('kpipe audit on a pipeline that goes on writing', () => {
  it('says what it compared and counts outputs of later inputs apart, not as a problem', async () => {
    const env = loginEnv()
    const settings = settingsOf(env)
    await createLoginTopics(settings, 1)
    await produceRaw(settings, Array.from({ length: 10 }, (_, i) => `{"n":${i}}`))
    // every input has its output, and three outputs name inputs 10..12: written after the audit's
    // snapshot of the input, as a live processor does while the audit reads
    const producer = createProducer(connectionOf(settings))
    try {
      const messages: OutputRecord[] = Array.from({ length: 13 }, (_, offset) => ({
        topic: offset % 2 ? settings.TOPIC_PROCESSED : settings.TOPIC_CLEANED,
        key: `k${offset}`,
        value: '{}',
        headers: lineageHeaders({ topic: settings.TOPIC_LOGINS, partition: 0, offset: BigInt(offset) }),
      }))
      await producer.send({ messages })
    } finally {
      await producer.close()
    }
    const report = await auditLogins(connectionOf(settings), settings)
    expect(report).toMatchObject({ inputs: 10, missing: 0, duplicated: 0, newer: 3, unmatched: 0, endOffsets: [10] })
    const text = formatAudit(report, settings)
    expect(text).toContain(`compared: ${settings.TOPIC_LOGINS} up to its end offsets when the audit started (partition 0: 10)`)
    expect(text).toContain('3 outputs are newer than the audit')
    expect(text).not.toContain('no longer in')

    const cli = runKpipe(['audit'], env)
    expect(cli.code, cli.stderr).toBe(0)
    expect(cli.stdout).toContain('3 outputs are newer than the audit')
  })
})

describe('reading a topic (kpipe tail, kpipe audit)', () => {
  it('reads every committed record in order and leaves no consumer group behind', async () => {
    const env = loginEnv()
    const settings = settingsOf(env)
    await createLoginTopics(settings, 3)
    await produceRaw(settings, Array.from({ length: 30 }, (_, i) => `{"n":${i}}`), (i) => `key-${i}`)
    const admin = new Admin(clientOptions(connectionOf(settings), 'kpipe-test-admin'))
    try {
      const groupsBefore = new Set((await admin.listGroups()).keys())
      const seen: string[] = []
      let ends: readonly bigint[] = []
      const read = await readTopic(connectionOf(settings), settings.TOPIC_LOGINS, { from: 'earliest', onEnds: (e) => (ends = e) }, (record) => {
        seen.push(`${record.partition}/${record.offset}/${record.value!.toString()}`)
      })
      expect(read).toBe(30)
      expect(ends.reduce((a, b) => a + b, 0n)).toBe(30n)
      expect(new Set(seen).size).toBe(30)
      // per partition, offsets in order from 0
      for (let p = 0; p < 3; p++) expect(seen.filter((s) => s.startsWith(`${p}/`)).map((s) => Number(s.split('/')[1]))).toEqual(Array.from({ length: Number(ends[p]) }, (_, i) => i))

      const tail = runKpipe(['tail', settings.TOPIC_LOGINS, '--from-beginning', '--count', '5', '--json'], env)
      expect(tail.code, tail.stderr).toBe(0)
      expect(tail.stdout.trim().split('\n')).toHaveLength(5)
      expect((await auditLogins(connectionOf(settings), settings)).inputs).toBe(30)

      // (the replay's own readers, of the replay tests on the same broker meanwhile, are not this read's)
      const left = [...(await admin.listGroups()).keys()].filter((id) => !groupsBefore.has(id) && id.includes('reader') && !id.startsWith(REPLAY_READER_PREFIX))
      expect(left).toEqual([])
    } finally {
      await admin.close()
    }
  })
})
