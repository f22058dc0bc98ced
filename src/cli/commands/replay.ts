import { Command } from 'commander'
import { SetupError } from '../../shell/errors.ts'
import { kafkaConnection } from '../../shell/kafka/connection.ts'
import { commandContext, intFlag, untilSignal } from '../context.ts'
import { statusLine } from '../progress.ts'
import type { ReplayFlags } from '../../logins/replay/replay-request.ts'

const collect = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)]

/** `kpipe logins replay`: dead-lettered or filtered events' original bytes back to the input, once per named replay. */
export function replayCommand(): Command {
  return new Command('replay')
    .description('re-send the original bytes of dead-lettered (processed-errors) or filtered (cleaned-data) events to user-login, exactly once per named replay')
    .requiredOption('--from <topic>', 'processed-errors or cleaned-data')
    .option('--error-type <type>', 'select error records of this type (invalid_json, missing_fields, invalid_field); repeatable', collect)
    .option('--reason <reason>', 'select filtered events of this reason (stale, app_version); repeatable', collect)
    .option('--since <time>', 'written at or after this time: ISO-8601, or a time ago like 2h, 30m, 7d')
    .option('--until <time>', 'written before this time: ISO-8601, or a time ago')
    .option('--limit <n>', 'send at most this many in this run; running the replay again continues', intFlag('limit', 1))
    .option('--dry-run', 'send nothing: counts by type or reason, where the bytes come from, examples with personal fields masked')
    .option('--to <topic>', 'send the copies here instead of TOPIC_LOGINS (the topic must exist)')
    .option('--id <name>', 'name of the replay (default: derived from the filters); a rerun with the same name sends nothing twice')
    .option('--batch-size <n>', 'parked records handled per transaction', intFlag('batch-size', 1, 10_000), 500)
    .option('--json', 'print the summary (or the dry-run report) as JSON')
    .action(async (flags: ReplayFlags & { json?: boolean }, command: Command) => {
      const { settings, log } = commandContext(command)
      // the replay's work is imported when it runs, not with the options of `kpipe logins`
      const [{ parseReplayRequest }, { KafkaReplayIo }, { formatSummary }, { replayVerdict, runReplay }] = await Promise.all([
        import('../../logins/replay/replay-request.ts'),
        import('../../logins/replay/replay-kafka.ts'),
        import('../../logins/replay/replay-report.ts'),
        import('../../logins/replay/run-replay.ts'),
      ])
      const request = parseReplayRequest(flags, settings, Date.now())
      const stop = new AbortController()
      void untilSignal((signal) => {
        log.info(`${signal}: finishing the batch in flight, then stopping; run the same command again to continue`)
        stop.abort()
      })
      const io = new KafkaReplayIo(kafkaConnection(settings, 'replay'), { topic: request.topic, replayId: request.id, dryRun: request.dryRun, batchSize: request.batchSize })
      const line = statusLine()
      let lastUpdate = 0
      const started = Date.now()
      try {
        const result = await runReplay({
          request, io, signal: stop.signal,
          // the outcome does not depend on the key: any key tells what the rules make of the bytes
          rules: { hashKey: settings.KPIPE_HASH_KEY ?? 'dry-run-prediction', maxMessageAgeSeconds: settings.MAX_MESSAGE_AGE, allowedAppVersions: new Set(settings.ALLOWED_APP_VERSIONS) },
          hashKey: settings.KPIPE_HASH_KEY,
          onProgress: (tally) => {
            // a log (not a terminal) gets a progress line only from runs that take a while
            if (Date.now() - lastUpdate < 250 || (!process.stderr.isTTY && Date.now() - started < 2000)) return
            lastUpdate = Date.now()
            line.update(`replay ${request.id}: ${tally.scanned} looked at, ${tally.selected} selected, ${tally.sent} sent, ${tally.unavailable} unavailable`)
          },
        })
        const { tally } = result
        if (flags.json) process.stdout.write(`${JSON.stringify({ id: request.id, dry_run: request.dryRun, handled_before: result.handledBefore, stopped: result.stopped, ...tally.toJSON() })}\n`)
        else if (result.report) process.stdout.write(result.report)
        const verdict = replayVerdict(request, result)
        if (verdict.error) throw new SetupError(verdict.error)
        if (!request.dryRun) {
          const summary = `${formatSummary(request, tally)}${result.handledBefore ? ` (${result.handledBefore} offsets handled by earlier runs)` : ''}${result.stopped ? '; stopped: run it again to continue' : ''}`
          line.done(summary)
        }
      } finally {
        await io.close()
      }
    })
}
