import type { BenchResult } from './run-bench.ts'

const n = (value: number, digits = 0) => value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits })

type Row = [part: string, figure: string, value: string, target: string]

/** The parts of the bench, in the order they run; each has rows of its own once measured. */
export type BenchSection = 'ceiling' | 'processor.at_least_once' | 'processor.exactly_once' | 'latency' | 'sink.postgres' | 'sink.pglite' | 'logins_sink' | 'collector'
const SECTIONS: BenchSection[] = ['ceiling', 'processor.at_least_once', 'processor.exactly_once', 'latency', 'sink.postgres', 'sink.pglite', 'logins_sink', 'collector']

/** A section's rows: part, figure, value, and the target where the issue sets one (none before the targets are judged); none when not measured. */
function sectionRows(r: BenchResult, section: BenchSection): Row[] {
  const target = (key: string) => {
    const t = r.targets[key]
    return t ? `${t.target}  ${t.met ? 'met' : 'NOT MET'}` : ''
  }
  const ceilingRate = r.ceiling ? Math.min(r.ceiling.producer_msgs_per_s, r.ceiling.consumer_msgs_per_s) : Number.NaN
  switch (section) {
    case 'ceiling':
      return r.ceiling
        ? [
            ['broker ceiling', `producer, ${r.ceiling.record_bytes} B records, acks=all`, `${n(r.ceiling.producer_msgs_per_s)} msg/s`, ''],
            ['', 'consumer', `${n(r.ceiling.consumer_msgs_per_s)} msg/s`, ''],
          ]
        : []
    case 'processor.at_least_once':
    case 'processor.exactly_once': {
      const key = section === 'processor.at_least_once' ? 'at_least_once' : 'exactly_once'
      const p = r.processor?.[key]
      if (!p) return []
      const alo = r.processor?.at_least_once
      const rows: Row[] = [
        [key === 'at_least_once' ? 'processor' : '', key === 'at_least_once' ? 'at-least-once' : 'exactly-once', `${n(p.msgs_per_s)} msg/s (${n(p.ratio_to_ceiling * 100, 1)} % of ${n(ceilingRate)})`, target(`processor.${key}.msgs_per_s`)],
        ['', `  processor CPU time per message`, `${n(p.cpu_us_per_msg, 1)} µs`, key === 'at_least_once' ? target('processor.at_least_once.cpu_us_per_msg') : ''],
      ]
      const t = p.cpu_us_per_msg_by_thread
      if (t) rows.push(['', `  by thread: main / rules / V8's helpers / other`, `${n(t.main, 1)} / ${n(t.rules, 1)} / ${n(t.v8_helpers, 1)} / ${n(t.other, 1)} µs`, ''])
      if (p.broker_cpu_us_per_msg !== undefined) rows.push(['', `  broker CPU time per message`, `${n(p.broker_cpu_us_per_msg, 1)} µs`, ''])
      if (key === 'at_least_once') rows.push(['', `  ratio to the ceiling`, n(p.ratio_to_ceiling, 3), target('processor.at_least_once.ratio_to_ceiling')])
      else if (alo) rows.push(['', `  ratio to at-least-once`, n(p.msgs_per_s / alo.msgs_per_s, 3), target('processor.exactly_once.ratio_to_at_least_once')])
      rows.push(['', `  wall time, start-up included`, `${n(p.wall_s, 1)} s (start-up ${n(p.startup_s, 1)} s)`, ''])
      rows.push(['', `  peak RSS`, `${n(p.peak_rss_mb, 1)} MB`, key === 'at_least_once' ? target('processor.peak_rss_mb') : ''])
      return rows
    }
    case 'latency':
      return Object.entries(r.latency ?? {}).map(([key, l], i): Row => {
        const rate = key.replace(/^at_(\d+)_msgs_per_s$/, '$1')
        return [i === 0 ? 'latency' : '', `at ${n(Number(rate))} msg/s p50 / p99 / max`, `${n(l.p50_ms, 1)} / ${n(l.p99_ms, 1)} / ${n(l.max_ms, 1)} ms`, target(`latency.${key}.p99_ms`)]
      })
    case 'sink.postgres': {
      const s = r.sink?.postgres
      return s
        ? [
            ['sink', 'into PostgreSQL', `${n(s.rows_per_s)} rows/s, peak RSS ${n(s.peak_rss_mb, 1)} MB`, target('sink.postgres.rows_per_s')],
            ['', '  sink CPU time per row', `${n(s.cpu_us_per_row, 1)} µs`, ''],
          ]
        : []
    }
    case 'sink.pglite': {
      const s = r.sink?.pglite
      return s
        ? [
            [r.sink?.postgres ? '' : 'sink', 'into PGlite', `${n(s.rows_per_s)} rows/s, peak RSS ${n(s.peak_rss_mb, 1)} MB`, target('sink.pglite.rows_per_s')],
            ['', '  sink CPU time per row (PGlite runs in it)', `${n(s.cpu_us_per_row, 1)} µs`, ''],
            ['', '  PGlite sink peak RSS', `${n(s.peak_rss_mb, 1)} MB`, target('sink.pglite.peak_rss_mb')],
          ]
        : []
    }
    case 'logins_sink': {
      const l = r.logins_sink
      return l
        ? [
            ['logins sink', 'into PostgreSQL', `${n(l.events_per_s)} events/s (${n(l.rows)} rows), peak RSS ${n(l.peak_rss_mb, 1)} MB`, target('logins_sink.events_per_s')],
            ['', '  sink CPU time per event', `${n(l.cpu_us_per_event, 1)} µs`, ''],
          ]
        : []
    }
    case 'collector':
      return r.collector ? [['collector', 'CPU time per sample', `${n(r.collector.cpu_ms_per_sample, 2)} ms, peak RSS ${n(r.collector.peak_rss_mb, 1)} MB`, '']] : []
  }
}

/** One section's figures in one line, for the progress on stderr as soon as they are measured. */
export function sectionLine(r: BenchResult, section: BenchSection, part: string): string {
  const figures = sectionRows(r, section).map(([, figure, value]) => (part.endsWith(figure.trim()) ? value : `${figure.trim()}: ${value}`))
  return `${part}: ${figures.join('; ')}`
}

/**
 * The figures as a table for a terminal: part, figure, value, and the target where the issue sets
 * one. After a failed part, the figures measured before it and what failed.
 */
export function benchTable(r: BenchResult): string {
  const rows = SECTIONS.flatMap((section) => sectionRows(r, section))
  const widths = [0, 1, 2, 3].map((i) => Math.max(0, ...rows.map((row) => row[i]!.length)))
  const line = (row: string[]) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()
  const m = r.machine
  return [
    `kpipe bench: ${m.cpus} × ${m.cpu_model}, ${n(Number(m.memory_total_mb))} MB, Node ${m.node}, Java ${m.java}`,
    `load average (1 min) ${m.load_average_1m_start} at the start, ${m.load_average_1m_end} at the end; ` +
      `${volume(r.settings)}, median of ${r.settings.repeat} run(s)${r.settings.quick ? ', --quick' : ''}${r.settings.only ? `, --only ${r.settings.only}` : ''}`,
    '',
    line(['part', 'figure', 'value', 'target']),
    ...rows.map(line),
    ...(r.failed ? ['', `FAILED: ${r.failed.part}: ${r.failed.error}`, 'The figures above were measured before it; the parts after it did not run.'] : []),
    '',
  ].join('\n')
}

/** What the run measured with: the preloaded messages, the sink's samples, or the latency's seconds at each rate. */
function volume(settings: BenchResult['settings']): string {
  if (settings.messages !== undefined) return `${n(settings.messages)} messages`
  if (settings.sink_rows !== undefined) return `${n(settings.sink_rows)} samples`
  return `${n(settings.latency_seconds ?? 0)} s at each rate`
}
