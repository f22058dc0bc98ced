import type { BenchResult } from './run-bench.ts'

const n = (value: number, digits = 0) => value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** The figures as a table for a terminal: part, figure, value, and the target where the issue sets one. */
export function benchTable(r: BenchResult): string {
  const rows: [string, string, string, string][] = []
  const target = (key: string) => {
    const t = r.targets[key]
    return t ? `${t.target}  ${t.met ? 'met' : 'NOT MET'}` : ''
  }
  const ceilingRate = Math.min(r.ceiling.producer_msgs_per_s, r.ceiling.consumer_msgs_per_s)
  rows.push(['broker ceiling', `producer, ${r.ceiling.record_bytes} B records, acks=all`, `${n(r.ceiling.producer_msgs_per_s)} msg/s`, ''])
  rows.push(['', 'consumer', `${n(r.ceiling.consumer_msgs_per_s)} msg/s`, ''])
  for (const [key, label] of [['at_least_once', 'at-least-once'], ['exactly_once', 'exactly-once']] as const) {
    const p = r.processor[key]
    rows.push([key === 'at_least_once' ? 'processor' : '', label, `${n(p.msgs_per_s)} msg/s (${n(p.ratio_to_ceiling * 100, 1)} % of ${n(ceilingRate)})`, target(`processor.${key}.msgs_per_s`)])
    rows.push(['', `  processor CPU time per message`, `${n(p.cpu_us_per_msg, 1)} µs`, key === 'at_least_once' ? target('processor.at_least_once.cpu_us_per_msg') : ''])
    if (key === 'at_least_once') rows.push(['', `  ratio to the ceiling`, n(p.ratio_to_ceiling, 3), target('processor.at_least_once.ratio_to_ceiling')])
    else rows.push(['', `  ratio to at-least-once`, n(p.msgs_per_s / r.processor.at_least_once.msgs_per_s, 3), target('processor.exactly_once.ratio_to_at_least_once')])
    rows.push(['', `  wall time, start-up included`, `${n(p.wall_s, 1)} s (start-up ${n(p.startup_s, 1)} s)`, ''])
    rows.push(['', `  peak RSS`, `${n(p.peak_rss_mb, 1)} MB`, key === 'at_least_once' ? target('processor.peak_rss_mb') : ''])
  }
  const latency = r.latency ?? {}
  for (const [key, l] of Object.entries(latency)) {
    const rate = key.replace(/^at_(\d+)_msgs_per_s$/, '$1')
    rows.push([key === Object.keys(latency)[0] ? 'latency' : '', `at ${n(Number(rate))} msg/s p50 / p99 / max`, `${n(l.p50_ms, 1)} / ${n(l.p99_ms, 1)} / ${n(l.max_ms, 1)} ms`, target(`latency.${key}.p99_ms`)])
  }
  if (r.sink) {
    rows.push(['sink', 'into PostgreSQL', `${n(r.sink.postgres.rows_per_s)} rows/s, peak RSS ${n(r.sink.postgres.peak_rss_mb, 1)} MB`, target('sink.postgres.rows_per_s')])
    rows.push(['', 'into PGlite', `${n(r.sink.pglite.rows_per_s)} rows/s, peak RSS ${n(r.sink.pglite.peak_rss_mb, 1)} MB`, target('sink.pglite.rows_per_s')])
    rows.push(['', '  PGlite sink peak RSS', `${n(r.sink.pglite.peak_rss_mb, 1)} MB`, target('sink.pglite.peak_rss_mb')])
  }
  if (r.logins_sink) {
    rows.push(['logins sink', 'into PostgreSQL', `${n(r.logins_sink.events_per_s)} events/s (${n(r.logins_sink.rows)} rows), peak RSS ${n(r.logins_sink.peak_rss_mb, 1)} MB`, target('logins_sink.events_per_s')])
    rows.push(['', '  sink CPU time per event', `${n(r.logins_sink.cpu_us_per_event, 1)} µs`, ''])
  }
  if (r.collector) rows.push(['collector', 'CPU time per sample', `${n(r.collector.cpu_ms_per_sample, 2)} ms, peak RSS ${n(r.collector.peak_rss_mb, 1)} MB`, ''])

  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => row[i]!.length)))
  const line = (row: string[]) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()
  const m = r.machine
  return [
    `kpipe bench: ${m.cpus} × ${m.cpu_model}, ${n(Number(m.memory_total_mb))} MB, Node ${m.node}, Java ${m.java}`,
    `load average (1 min) ${m.load_average_1m_start} at the start, ${m.load_average_1m_end} at the end; ` +
      `${n(r.settings.messages)} messages, median of ${r.settings.repeat} run(s)${r.settings.quick ? ', --quick' : ''}${r.settings.only ? `, --only ${r.settings.only}` : ''}`,
    '',
    line(['part', 'figure', 'value', 'target']),
    ...rows.map(line),
    '',
  ].join('\n')
}
