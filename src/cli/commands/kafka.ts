import { Command } from 'commander'
import { brokerStatus, startLocalBroker, stopLocalBroker } from '../../shell/broker/local-broker.ts'
import { KAFKA_VERSION } from '../../shell/broker/jars.ts'
import { commandContext, intFlag } from '../context.ts'
import { jarProgress } from '../progress.ts'

export function kafkaCommand(): Command {
  const kafka = new Command('kafka').description(`the local Apache Kafka ${KAFKA_VERSION} broker (KRaft, one node, data under KPIPE_DATA_DIR/kafka)`)

  kafka
    .command('start')
    .description('resolve Kafka\'s jars (first run), format storage and start the broker on 127.0.0.1')
    .option('--port <port>', 'broker port (the controller uses port + 1)', intFlag('port', 1, 65534), 9092)
    .option('--heap <mb>', 'broker heap in MB', intFlag('heap', 128, 65536), 512)
    .action(async (options: { port: number; heap: number }, command: Command) => {
      const { settings } = commandContext(command)
      const info = await startLocalBroker({
        dataDir: settings.KPIPE_DATA_DIR,
        port: options.port,
        heapMb: options.heap,
        onProgress: jarProgress(),
        onStatus: (line) => process.stderr.write(`kafka: ${line}\n`),
      })
      if (info.alreadyRunning) console.log(`Kafka is already running at ${info.bootstrap} (pid ${info.pid})`)
      else console.log(`Kafka ${KAFKA_VERSION} is running at ${info.bootstrap} (pid ${info.pid}); log: ${info.logFile}`)
      console.log(`export KAFKA_BROKERS=${info.bootstrap}`)
    })

  kafka
    .command('stop')
    .description('stop the local broker cleanly and wait for it to exit')
    .action(async (_options: unknown, command: Command) => {
      const { settings } = commandContext(command)
      const info = await stopLocalBroker(settings.KPIPE_DATA_DIR)
      console.log(info ? `Kafka at ${info.bootstrap} stopped` : `no local Kafka broker is running for ${settings.KPIPE_DATA_DIR}`)
    })

  kafka
    .command('status')
    .description('say whether the local broker runs, and where (exit 1 when it does not)')
    .action((_options: unknown, command: Command) => {
      const { settings } = commandContext(command)
      const info = brokerStatus(settings.KPIPE_DATA_DIR)
      if (info) {
        console.log(`running at ${info.bootstrap} (pid ${info.pid}); data ${info.dataDir}/kafka; log ${info.logFile}`)
      } else {
        console.log(`not running (data dir ${settings.KPIPE_DATA_DIR})`)
        process.exitCode = 1
      }
    })
  return kafka
}
