import { Command } from 'commander'
import { commandContext, untilSignal } from '../context.ts'
import { kafkaConnection } from '../../shell/kafka/connection.ts'
import { auditLogins, type AuditReport } from '../../logins/audit/audit-logins.ts'

export function auditCommand(): Command {
  return new Command('audit')
    .description('prove conservation: every user-login offset appears exactly once across processed-output, cleaned-data and processed-errors (exit 1 on a missing one)')
    .option('--strict', 'also exit 1 on duplicates (for --exactly-once processing)')
    .option('--json', 'print the report as JSON')
    .action(async (options: { strict?: boolean; json?: boolean }, command: Command) => {
      const { settings } = commandContext(command)
      const stop = new AbortController()
      void untilSignal(() => stop.abort())
      const report = await auditLogins(kafkaConnection(settings, 'audit'), settings, stop.signal)
      process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatAudit(report, settings))
      if (report.missing > 0 || (options.strict && report.duplicated > 0)) process.exitCode = 1
    })
}

export function formatAudit(report: AuditReport, topics: { TOPIC_PROCESSED: string; TOPIC_CLEANED: string; TOPIC_ERRORS: string }): string {
  const rows = [['partition', 'inputs', topics.TOPIC_PROCESSED, topics.TOPIC_CLEANED, topics.TOPIC_ERRORS, 'missing', 'duplicated']]
  for (const p of report.partitions) {
    rows.push([String(p.partition), String(p.inputs), String(p.outputs.processed), String(p.outputs.cleaned), String(p.outputs.errors), String(p.missing), String(p.duplicated)])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  let out = rows.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n') + '\n'
  for (const p of report.partitions) {
    if (p.missingOffsets.length) out += `partition ${p.partition}: missing offsets ${p.missingOffsets.join(', ')}${p.missing > p.missingOffsets.length ? ', …' : ''}\n`
    if (p.duplicatedOffsets.length) out += `partition ${p.partition}: duplicated offsets ${p.duplicatedOffsets.join(', ')}${p.duplicated > p.duplicatedOffsets.length ? ', …' : ''}\n`
  }
  out += `compared: ${report.topic} up to its end offsets when the audit started (${report.endOffsets.map((end, partition) => `partition ${partition}: ${end}`).join(', ') || 'no partitions'})\n`
  if (report.newer) out += `${report.newer} outputs are newer than the audit (of inputs written after it started): not compared, not a problem\n`
  if (report.unmatched) out += `${report.unmatched} outputs name source offsets that are no longer in ${report.topic} (deleted by retention since they were processed)\n`
  out += `${report.topic}: ${report.inputs} inputs, ${report.missing} missing, ${report.duplicated} duplicated\n`
  return out
}
