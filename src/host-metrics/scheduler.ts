/**
 * A schedule that does not drift: tick n is due at `origin + n × interval`, computed from the
 * origin rather than from when the previous tick ended, so slow work or timer lateness never
 * accumulates. The origin is aligned to a multiple of the interval on the wall clock, so
 * samples of several hosts share timestamps (…:00.000, …:00.500). A tick that is already
 * past when the previous work ends is skipped, not run late in a burst.
 */
export function nextTickAt(nowMs: number, intervalMs: number, originMs = 0): number {
  return originMs + (Math.floor((nowMs - originMs) / intervalMs) + 1) * intervalMs
}

export interface ScheduleOptions {
  intervalMs: number
  /** called at each tick with its scheduled time; may be async, ticks never overlap */
  onTick: (scheduled: Date) => void | Promise<void>
  /** called when ticks were skipped because the work took longer than the interval */
  onSkipped?: (count: number) => void
  /** called when onTick throws or rejects; the schedule goes on */
  onError?: (error: unknown) => void
  now?: () => number
  /** no tick before this time (epoch ms), e.g. to leave a baseline reading a real interval */
  notBefore?: number
}

export interface Schedule {
  stop(): void
  /** resolves once stopped and the tick in progress, if any, has finished */
  readonly done: Promise<void>
}

export function startSchedule(options: ScheduleOptions): Schedule {
  const now = options.now ?? Date.now
  const { intervalMs } = options
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  let finish!: () => void
  const done = new Promise<void>((resolve) => (finish = resolve))
  let due = nextTickAt(Math.max(now(), options.notBefore ?? 0), intervalMs)

  const arm = () => {
    if (stopped) return finish()
    timer = setTimeout(fire, Math.max(0, due - now()))
  }
  const fire = () => {
    timer = undefined
    if (stopped) return finish()
    // setTimeout may wake a millisecond early; never run a tick before its time
    if (now() < due) return arm()
    const scheduled = due
    void Promise.resolve()
      .then(() => options.onTick(new Date(scheduled)))
      .catch((error: unknown) => options.onError?.(error))
      .then(() => {
        const next = nextTickAt(now(), intervalMs)
        const skipped = Math.round((next - scheduled) / intervalMs) - 1
        if (skipped > 0) options.onSkipped?.(skipped)
        due = next
        arm()
      })
  }
  arm()
  return {
    stop() {
      stopped = true
      if (timer) {
        clearTimeout(timer)
        timer = undefined
        finish()
      }
    },
    done,
  }
}
