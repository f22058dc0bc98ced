import { Command } from 'commander'
import { SetupError } from '../../shell/errors.ts'
import { auditCommand } from './audit.ts'
import { loginsCommand } from './logins.ts'
import { tailCommand } from './tail.ts'
import { topicsCommand } from './topics.ts'
import { dashboardCommand } from './dashboard.ts'
import { upCommand } from './up.ts'
import { metricsCommand } from './metrics.ts'
import { benchCommand } from './bench.ts'

/** Commands of SPEC.md, each registered here by the module that builds it. */
const PLANNED: [string, string][] = [
  ['up', 'the whole stack on this machine: broker, database, generator, processor, collector, sink and dashboard'],
  ['topics', 'create every kpipe topic'],
  ['logins', 'the user-login pipeline: generate and process'],
  ['metrics', 'the host metrics pipeline: collect and sink'],
  ['dashboard', 'the live web dashboard'],
  ['tail', 'pretty-print a topic'],
  ['audit', 'prove that every user-login offset appears exactly once across the outputs'],
  ['bench', 'measure the processor, the sink and the collector against the broker\'s own ceiling'],
]

export function registerCommands(program: Command): void {
  for (const command of [topicsCommand(), loginsCommand(), tailCommand(), auditCommand()]) program.addCommand(command)
  program.addCommand(upCommand())
  program.addCommand(dashboardCommand())
  program.addCommand(metricsCommand())
  program.addCommand(benchCommand())
  for (const [name, description] of PLANNED) {
    if (program.commands.some((c) => c.name() === name)) continue
    program
      .command(name)
      .description(`${description} (not built yet)`)
      .allowUnknownOption()
      .allowExcessArguments()
      .action(() => {
        throw new SetupError(`kpipe ${name} is not built yet in this version`)
      })
  }
}
