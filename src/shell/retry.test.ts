import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { retryMessage, retryWithBackoff, StoppedWaiting } from './retry.ts'

function capturingLogger() {
  const lines: { msg: string; attempt?: number }[] = []
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { msg: string })
      done()
    },
  })
  return { log: pino({ level: 'warn' }, sink), lines }
}

describe('retryWithBackoff', () => {
  it('retries until the action succeeds, one warning per failure saying what, why and when', async () => {
    const { log, lines } = capturingLogger()
    let calls = 0
    const result = await retryWithBackoff(async (attempt) => {
      calls++
      expect(attempt.number).toBe(calls)
      if (calls < 3) throw new Error(`refused ${calls}`)
      return 'ok'
    }, { what: 'Kafka unavailable', log, maxDelayMs: 5 })
    expect(result).toBe('ok')
    expect(calls).toBe(3)
    expect(lines.map((l) => l.msg)).toEqual([
      expect.stringMatching(/^Kafka unavailable \(refused 1\); retrying in 0\.0 s$/),
      expect.stringMatching(/^Kafka unavailable \(refused 2\); retrying in 0\.0 s$/),
    ])
  })

  it('throws an error that is not retriable at once, through `fatal`', async () => {
    const { log, lines } = capturingLogger()
    let calls = 0
    const failure = retryWithBackoff(async () => {
      calls++
      throw new Error('permission denied')
    }, { what: 'x', log, retriable: (e) => !/permission/.test(String(e)), fatal: (e) => new Error(`fatal: ${(e as Error).message}`) })
    await expect(failure).rejects.toThrow('fatal: permission denied')
    expect(calls).toBe(1)
    expect(lines).toHaveLength(0)
  })

  it('gives up after `attempts`, throwing the last error', async () => {
    const { log } = capturingLogger()
    let calls = 0
    await expect(retryWithBackoff(async () => {
      throw new Error(`failure ${++calls}`)
    }, { what: 'write', log, attempts: 3, maxDelayMs: 2 })).rejects.toThrow('failure 3')
    expect(calls).toBe(3)
  })

  it('a signal that aborts during the wait ends it with StoppedWaiting, without another attempt', async () => {
    const { log, lines } = capturingLogger()
    const stop = new AbortController()
    let calls = 0
    const waiting = retryWithBackoff(async () => {
      calls++
      throw new Error('down')
    }, { what: 'database unavailable', log, signal: stop.signal, maxDelayMs: 60_000, attempts: 1000 })
    // the first failure is logged before the wait begins
    while (lines.length === 0) await new Promise((r) => setImmediate(r))
    stop.abort()
    const error = await waiting.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StoppedWaiting)
    expect((error as StoppedWaiting).cause).toEqual(new Error('down'))
    expect(calls).toBe(1)
  })

  it('progress resets the backoff: the next failure waits as briefly as a first one', async () => {
    const { log, lines } = capturingLogger()
    let calls = 0
    await retryWithBackoff(async (attempt) => {
      calls++
      if (calls === 5) return
      if (calls === 4) attempt.progressed()
      throw new Error('lost')
    }, { what: 'session', log, maxDelayMs: 1000 })
    // the delays before the 2nd, 3rd and 4th attempts grow (≥ 100, 200 ms); the 5th is a first one again (≤ 200 ms)
    const delays = lines.map((l) => Number(/retrying in ([\d.]+) s/.exec(l.msg)![1]))
    expect(delays[2]).toBeGreaterThanOrEqual(0.4)
    expect(delays[3]).toBeLessThanOrEqual(0.2)
  })

  it('one message format for every retry', () => {
    expect(retryMessage('batch of 3 not handled', new Error('db down'), 1250, ', nothing committed')).toBe('batch of 3 not handled (db down); retrying in 1.3 s, nothing committed')
  })
})
