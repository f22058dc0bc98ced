import { describe, expect, it } from 'vitest'
import { transformLogin } from './transform-login.ts'
import { OutcomeCounts } from './outcome-counts.ts'
import { FAILED, FILTERED, PROCESSED, applyRules, loginRules, packValues, portableRules, type RulesResult } from './rules-batch.ts'
import { NOW, corpus, rulesList } from './login-corpus.fixture.ts'
import type { LoginRules } from './login-event.ts'

/** What each record of the result is, beside what transformLogin makes of it: they must be the same, byte for byte. */
function expectSameAsTransform(values: (Buffer | undefined)[], result: RulesResult, rules: LoginRules): void {
  const counts = new OutcomeCounts()
  const failures = []
  expect(result.kinds).toHaveLength(values.length)
  for (const [i, raw] of values.entries()) {
    const outcome = transformLogin(raw, NOW, rules)
    counts.add(outcome)
    const at = (k: number) => result.bounds[3 * i + k]!
    if (outcome.kind === 'failed') {
      expect(result.kinds[i], `record ${i}`).toBe(FAILED)
      failures.push(outcome)
      continue
    }
    expect(result.kinds[i], `record ${i}`).toBe(outcome.kind === 'processed' ? PROCESSED : FILTERED)
    expect(Buffer.from(result.bytes.subarray(at(0), at(1))).equals(Buffer.from(outcome.value)), `value of record ${i}`).toBe(true)
    expect(Buffer.from(result.bytes.subarray(at(1), at(2))).equals(Buffer.from(outcome.userId)), `key of record ${i}`).toBe(true)
    expect(result.timestamps[i]).toBe(outcome.kind === 'processed' ? outcome.timestamp : 0)
  }
  expect(result.failures).toEqual(failures)
  expect(result.counts.toJSON()).toEqual(counts.toJSON())
}

describe('the login rules over packed records (what the rules thread runs)', () => {
  it('give what transformLogin gives, record for record, on the seeded corpus under three rule sets', () => {
    for (const [r, rules] of rulesList.entries()) {
      const values: (Buffer | undefined)[] = corpus(5_000, 100 + r)
      values.splice(17, 0, undefined)
      // the rules cross to the thread as plain data and come back the same
      const result = applyRules(packValues(values.map((value) => ({ value }))), NOW, loginRules(structuredClone(portableRules(rules))))
      expectSameAsTransform(values, result, rules)
      // the third rule set allows no app version: nothing is processed there, all valid events are filtered
      expect(result.kinds.filter((k) => k === (rules.allowedAppVersions.size > 0 ? PROCESSED : FILTERED)).length).toBeGreaterThan(500)
      expect(result.failures.length).toBeGreaterThan(500)
    }
  })

  it('grow their output buffer when the outputs are longer than it (non-ASCII, long fields)', () => {
    const rules = rulesList[0]!
    const event = (i: number, userId: string) => Buffer.from(JSON.stringify({
      user_id: userId, app_version: '2.3.0', device_type: 'android', ip: '10.0.0.1', locale: 'é'.repeat(500), device_id: `d-${i}`, timestamp: String(NOW / 1000 - 5),
    }))
    const values = [event(0, '😀'.repeat(3_000)), event(1, 'u'), event(2, 'ü'.repeat(2_000))]
    const result = applyRules(packValues(values.map((value) => ({ value }))), NOW, rules)
    expect(result.bytes.length).toBeGreaterThan(4096)
    expectSameAsTransform(values, result, rules)
  })

  it('pack a run of records into a buffer of its own, with no value told apart from an empty one', () => {
    const records = [{ value: Buffer.from('abc') }, { value: undefined }, { value: Buffer.alloc(0) }, { value: Buffer.from('de') }, { value: Buffer.from('zz') }]
    const packed = packValues(records, 1, 4)
    expect([...packed.bounds]).toEqual([-1, -1, 0, 0, 0, 2])
    expect(Buffer.from(packed.bytes).toString()).toBe('de')
    // transferable without taking anything else along: the buffer is the bytes, not a slice of a pool
    expect(packed.bytes.byteOffset).toBe(0)
    expect(packed.bytes.buffer.byteLength).toBe(2)
  })
})
