import { Command } from 'commander'
import { commandContext, intFlag, untilSignal } from '../context.ts'
import { sleep } from '../../shell/backoff.ts'
import { startDashboard } from '../../dashboard/server.ts'

export function dashboardCommand(): Command {
  return new Command('dashboard')
    .description('the live web dashboard: host metrics, the login pipeline and Kafka, with /metrics, /healthz and /readyz')
    .option('--host <address>', 'address to bind (HOST, default 127.0.0.1; any other needs KPIPE_DASHBOARD_TOKEN)')
    .option('--port <port>', 'port to listen on (PORT, default 8080; 0 picks a free one)', intFlag('port', 0, 65535))
    .action(async (_options: unknown, command: Command) => {
      const { settings, log } = commandContext(command, { host: 'HOST', port: 'PORT' })
      const stopped = untilSignal()
      const dashboard = await startDashboard(settings, log)
      log.info(`dashboard at ${dashboard.url} (database: ${settings.DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite'})`)
      console.log(`kpipe dashboard: ${dashboard.url}`)
      const signal = await stopped
      log.info(`${signal}: stopping the dashboard`)
      await Promise.race([dashboard.close(), sleep(8000)])
    })
}
