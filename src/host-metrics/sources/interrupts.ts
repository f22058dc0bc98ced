import { lineAfter } from './proc-text.ts'

/**
 * Kernel event counters from Linux `/proc/stat`: hardware interrupts (`intr`, whose first
 * number is the total over every IRQ, including those `/proc/interrupts` does not list),
 * soft interrupts, context switches, and the boot time that tells a reboot apart.
 * Linux has no system-call counter, hence no `cpu_calls` here.
 */
export interface KernelCounters {
  interrupts: number | null
  softInterrupts: number | null
  contextSwitches: number | null
  /** boot time, epoch seconds: when it changes, every counter restarted from zero */
  bootTime: number | null
}

export function parseKernelCounters(procStat: string): KernelCounters {
  return {
    interrupts: firstNumberOf(procStat, 'intr'),
    softInterrupts: firstNumberOf(procStat, 'softirq'),
    contextSwitches: firstNumberOf(procStat, 'ctxt'),
    bootTime: firstNumberOf(procStat, 'btime'),
  }
}

/** The first number on the line that starts with `name`; the `intr` line can be thousands of numbers long. */
function firstNumberOf(text: string, name: string): number | null {
  const match = /^\s*(\d+)/.exec(lineAfter(text, `${name} `)?.slice(0, 32) ?? '')
  const value = match ? Number(match[1]) : NaN
  return Number.isSafeInteger(value) ? value : null
}
