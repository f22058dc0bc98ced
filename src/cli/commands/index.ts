import { Command } from 'commander'
import { auditCommand } from './audit.ts'
import { loginsCommand } from './logins.ts'
import { tailCommand } from './tail.ts'
import { topicsCommand } from './topics.ts'
import { dashboardCommand } from './dashboard.ts'
import { upCommand } from './up.ts'
import { metricsCommand } from './metrics.ts'
import { benchCommand } from './bench.ts'

export function registerCommands(program: Command): void {
  for (const command of [topicsCommand(), loginsCommand(), tailCommand(), auditCommand()]) program.addCommand(command)
  program.addCommand(upCommand())
  program.addCommand(dashboardCommand())
  program.addCommand(metricsCommand())
  program.addCommand(benchCommand())
}
