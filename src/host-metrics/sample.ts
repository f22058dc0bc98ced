/**
 * One host metrics sample, as the collector produces it to the `performance` topic (JSON,
 * keyed by host; its schema is `hostSampleSchema` in src/record-formats.ts) and as the sink stores it. Field names and meanings are those of SPEC.md;
 * `context_switches` and `soft_interrupts` are extras the sink does not store.
 */
export interface HostSample {
  host: string
  /** ISO-8601 UTC: the scheduled tick the sample belongs to */
  time: string
  /** percent busy over the interval since the previous sample, all cores */
  cpu_usage: number | null
  /** (total − available) / total × 100 */
  memory_usage: number | null
  /** hardware interrupts since boot */
  cpu_interrupts: number | null
  /** system calls since boot: no platform kpipe runs on reports them (null, never a made-up 0) */
  cpu_calls: number | null
  /** total − available, bytes */
  memory_used: number | null
  /** free memory as the OS reports it, bytes */
  memory_free: number | null
  bytes_sent: number | null
  bytes_received: number | null
  /** percent used of the filesystem holding the disk path (default `/`) */
  disk_usage: number | null
  context_switches?: number | null
  soft_interrupts?: number | null
}

export { PERCENT_COLUMNS, SAMPLE_COLUMNS, type SampleColumn } from '../record-formats.ts'
