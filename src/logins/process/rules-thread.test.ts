import { describe, expect, it } from 'vitest'
import { applyRules, packValues } from '../core/rules-batch.ts'
import { NOW, corpus, rulesList } from '../core/login-corpus.fixture.ts'
import { RulesThread } from './rules-thread.ts'

describe('the rules thread', () => {
  it('answers runs in the order they were asked, with what the rules make of them here', async () => {
    const rules = rulesList[1]!
    const thread = new RulesThread(rules)
    try {
      const runs = [corpus(700, 1), corpus(3, 2), corpus(1_200, 3)].map((values) => values.map((value) => ({ value })))
      // all asked at once, as the processor asks a batch's runs
      const results = await Promise.all(runs.map((records) => thread.run(packValues(records), NOW)))
      for (const [r, records] of runs.entries()) {
        const here = applyRules(packValues(records), NOW, rules)
        const there = results[r]!
        expect(Buffer.from(there.bytes).equals(Buffer.from(here.bytes))).toBe(true)
        expect([...there.kinds]).toEqual([...here.kinds])
        expect([...there.bounds]).toEqual([...here.bounds])
        expect([...there.timestamps]).toEqual([...here.timestamps])
        expect(there.failures).toEqual(here.failures)
        expect(there.counts.toJSON()).toEqual(here.counts.toJSON())
        // an OutcomeCounts again, not plain data
        expect(there.counts.errorsTotal).toBe(here.counts.errorsTotal)
      }
    } finally {
      await thread.close()
    }
  })

  it('fails the runs it has not answered, and every later one, once it is gone', async () => {
    const thread = new RulesThread(rulesList[0]!)
    const pending = expect(thread.run(packValues(corpus(20_000, 4).map((value) => ({ value }))), NOW)).rejects.toThrow(/rules thread is closed/)
    await thread.close()
    await pending
    await expect(thread.run(packValues([{ value: Buffer.from('{}') }]), NOW)).rejects.toThrow(/rules thread is closed/)
  })
})
