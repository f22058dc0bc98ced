import { Command } from 'commander'
import { commandContext, intFlag } from '../context.ts'
import { kafkaConnection } from '../../shell/kafka/connection.ts'
import { ensureTopics, pipelineTopics } from '../../shell/kafka/topics.ts'

export function topicsCommand(): Command {
  const topics = new Command('topics').description('the Kafka topics of kpipe')
  topics
    .command('create')
    .description('create every topic of both pipelines that does not exist yet (existing ones are left as they are)')
    .option('--partitions <n>', 'partitions per topic', intFlag('partitions', 1, 10_000), 3)
    .option('--replication-factor <n>', 'replicas per partition (at most the number of brokers)', intFlag('replication-factor', 1, 32), 1)
    .action(async (options: { partitions: number; replicationFactor: number }, command: Command) => {
      const { settings } = commandContext(command)
      const result = await ensureTopics(kafkaConnection(settings, 'admin'), pipelineTopics(settings).map((name) => ({
        name, partitions: options.partitions, replicationFactor: options.replicationFactor,
      })))
      for (const name of result.created) console.log(`created  ${name} (${options.partitions} partitions, replication ${options.replicationFactor})`)
      for (const name of result.existing) console.log(`exists   ${name}`)
    })
  return topics
}
