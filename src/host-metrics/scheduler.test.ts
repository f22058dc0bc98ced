import { describe, expect, it } from 'vitest'
import { nextTickAt, startSchedule } from './scheduler.ts'

describe('nextTickAt', () => {
  it('is the next multiple of the interval after now, from the origin', () => {
    expect(nextTickAt(1000, 500)).toBe(1500)
    expect(nextTickAt(1001, 500)).toBe(1500)
    expect(nextTickAt(1499, 500)).toBe(1500)
    expect(nextTickAt(1234, 100, 34)).toBe(1334)
  })
})

describe('startSchedule', () => {
  it('does not drift when every tick does slow work, and skips ticks it cannot make', async () => {
    const intervalMs = 100
    const ticks: number[] = []
    const lateness: number[] = []
    let skipped = 0
    const schedule = startSchedule({
      intervalMs,
      onTick: (scheduled) => {
        ticks.push(scheduled.getTime())
        lateness.push(Date.now() - scheduled.getTime())
        // 40 ms of work per tick: a schedule computed from each tick's end would slip 40 ms a tick
        const until = Date.now() + 40
        while (Date.now() < until);
        // one tick takes longer than the interval: the tick it overruns is skipped, not run late
        if (ticks.length === 5) {
          const longer = Date.now() + 150
          while (Date.now() < longer);
        }
      },
      onSkipped: (count) => (skipped += count),
    })
    const deadline = Date.now() + 10_000
    while (ticks.length < 15 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    schedule.stop()
    await schedule.done
    expect(ticks.length).toBeGreaterThanOrEqual(15)
    for (const t of ticks) expect(t % intervalMs).toBe(0)
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!).toBeGreaterThanOrEqual(intervalMs)
    expect(skipped).toBeGreaterThanOrEqual(1)
    // the span of the ticks is whole intervals: the 40 ms of work never accumulated
    expect((ticks.at(-1)! - ticks[0]!) / intervalMs).toBe(ticks.length - 1 + skipped)
    // ticks start on time (timers are late by a few ms on a busy machine, never by the work)
    const sorted = [...lateness].sort((a, b) => a - b)
    expect(sorted[Math.floor(sorted.length / 2)]!).toBeLessThan(25)
  })

  it('stops between ticks and resolves done', async () => {
    let ticks = 0
    const schedule = startSchedule({ intervalMs: 100, onTick: () => void ticks++ })
    schedule.stop()
    await schedule.done
    await new Promise((r) => setTimeout(r, 250))
    expect(ticks).toBe(0)
  })
})
