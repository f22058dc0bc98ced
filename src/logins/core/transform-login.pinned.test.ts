import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { transformLogin } from './transform-login.ts'
import { referenceTransformLogin } from './transform-login-reference.fixture.ts'
import type { LoginOutcome } from './login-event.ts'
import { NOW, corpus, rulesList } from './login-corpus.fixture.ts'

/**
 * A speed-up that changes an output is a bug: every outcome of the optimised rules must equal the
 * reference implementation's (the rules as they were before) byte for byte, on a seeded corpus
 * that goes well beyond what the generator emits.
 */

/** Every field of an outcome, in a fixed order, so that two outcomes compare as text. */
const describeOutcome = (o: LoginOutcome) => JSON.stringify(o, (_k, v: unknown) => (v instanceof Set ? [...v] : v))

describe('the optimised login rules give the reference outputs byte for byte', () => {
  it('on 60,000 seeded records under three rule sets', () => {
    const digest = createHash('sha256')
    let compared = 0
    const kinds = new Map<string, number>()
    for (const [r, rules] of rulesList.entries()) {
      for (const raw of corpus(20_000, 7 + r)) {
        const expected = describeOutcome(referenceTransformLogin(raw, NOW, rules))
        const actual = describeOutcome(transformLogin(raw, NOW, rules))
        if (actual !== expected) expect({ input: raw.toString('utf8'), actual }).toEqual({ input: raw.toString('utf8'), actual: expected })
        digest.update(expected).update('\n')
        const kind = (JSON.parse(expected) as { kind: string; errorType?: string; reason?: string })
        const label = `${kind.kind}:${kind.errorType ?? kind.reason ?? ''}`
        kinds.set(label, (kinds.get(label) ?? 0) + 1)
        compared++
      }
    }
    expect(compared).toBe(60_000)
    // the corpus reaches every outcome, each many times
    for (const label of ['processed:', 'filtered:stale', 'filtered:app_version', 'failed:invalid_json', 'failed:missing_fields', 'failed:invalid_field']) {
      expect(kinds.get(label) ?? 0, label).toBeGreaterThan(300)
    }
    // the reference itself is pinned: a change of the corpus, of the rules or of Node's JSON shows here
    // (JSON.parse's messages are part of invalid_json errors; this digest is Node.js 24's, the reference runtime)
    expect(digest.digest('hex')).toBe('1aca92d4cd8535f4f256c09435dc0ff70bad59e34aec33c8f7d562bf31bfa549')
  })
})
