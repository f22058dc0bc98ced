import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import type { Settings } from '../shell/settings.ts'
import { SetupError } from '../shell/errors.ts'
import { brokerStatus } from '../shell/broker/local-broker.ts'
import { DatabaseInUseError, lockPgliteDir } from '../shell/postgres/database.ts'
import { heldBy } from '../shell/port-holder.ts'

export interface PreflightOptions {
  settings: Pick<Settings, 'HOST' | 'PORT' | 'KPIPE_DATA_DIR' | 'DATABASE_URL'>
  /** was KAFKA_BROKERS given? if not, `up` starts a local broker on kafkaPort and kafkaPort + 1 */
  brokersGiven: boolean
  kafkaPort: number
}

/** Why `port` on `host` cannot be listened on right now (EADDRINUSE, EADDRNOTAVAIL, …), or undefined. */
export async function listenRefusal(port: number, host: string): Promise<string | undefined> {
  return new Promise((done) => {
    const server = createServer()
    server.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? 'error'))
    server.listen({ port, host, exclusive: true }, () => server.close(() => done(undefined)))
  })
}

/**
 * What `kpipe up` can check before it starts anything: the dashboard's port, the local broker's
 * two ports (unless KAFKA_BROKERS is given or this data dir's broker already runs) and the
 * embedded database's lock. Throws the first problem as a one-line SetupError; a check that
 * passes can still be beaten by another process in the next second, and then the part that
 * starts says so itself.
 */
export async function preflight(options: PreflightOptions): Promise<void> {
  const { settings } = options
  if (settings.PORT !== 0) {
    const refusal = await listenRefusal(settings.PORT, settings.HOST)
    if (refusal === 'EADDRINUSE') throw new SetupError(`port ${settings.PORT} on ${settings.HOST} is already in use (the dashboard's)${heldBy(settings.PORT)}`, 'stop what uses it, or choose another port with --port or PORT')
    if (refusal) throw new SetupError(`cannot listen on HOST=${settings.HOST} port ${settings.PORT} (${refusal})`, 'set HOST to an address of this machine, e.g. 127.0.0.1')
  }
  if (!options.brokersGiven && !brokerStatus(settings.KPIPE_DATA_DIR)) {
    for (const port of [options.kafkaPort, options.kafkaPort + 1]) {
      if ((await listenRefusal(port, '127.0.0.1')) !== undefined) {
        throw new SetupError(
          `port ${port} on 127.0.0.1 is already in use (the local Kafka broker's ${port === options.kafkaPort ? 'listener' : 'controller'})${heldBy(port)}`,
          `stop what listens there (another Kafka?), or run kpipe up --kafka-port ${options.kafkaPort + 10}, or point it at a running Kafka with KAFKA_BROKERS`,
        )
      }
    }
  }
  if (!settings.DATABASE_URL) {
    const dir = join(resolve(settings.KPIPE_DATA_DIR), 'pg')
    try {
      lockPgliteDir(dir)()
    } catch (error) {
      if (!(error instanceof DatabaseInUseError)) throw error
      throw new SetupError(
        `the embedded database at ${dir} is in use by process ${error.pid} (a kpipe metrics sink or kpipe dashboard of this data dir?)`,
        `stop process ${error.pid} first, or give this stack another --data-dir, or set DATABASE_URL to a PostgreSQL server`,
      )
    }
  }
}
