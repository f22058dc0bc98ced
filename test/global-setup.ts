import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import 'vitest'
import type { TestProject } from 'vitest/node'
import { freePort, startLocalBroker, stopLocalBroker } from '../src/shell/broker/local-broker.ts'
import { preparePgliteTemplate } from '../src/shell/postgres/database.ts'
import { allStarted } from './support/all-started.ts'
import { removePostgres, startPostgres, type PostgresServer } from './support/postgres-server.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string
    postgresUrl: string
    postgresPort: number
    postgresDir: string
  }
}

/**
 * Starts a real Apache Kafka broker and a real PostgreSQL server for the whole run, each on a
 * free port in a temp dir, and tears both down afterwards, also when tests fail. Neither is
 * optional: without Java or PostgreSQL the run fails with a message that says what to install.
 */
export default async function setup(project: TestProject) {
  const brokerData = mkdtempSync(join(tmpdir(), 'kpipe-kafka-'))
  let postgres: PostgresServer | undefined
  const teardown = async () => {
    await stopLocalBroker(brokerData).catch(() => {})
    rmSync(brokerData, { recursive: true, force: true })
    if (postgres) removePostgres(postgres)
    postgres = undefined
  }
  const onExit = () => void teardown()
  process.once('SIGINT', onExit)
  process.once('SIGTERM', onExit)
  try {
    const [kafkaPort, controllerPort, pgPort] = [await freePort(), await freePort(), await freePort()]
    // the teardown only once both have settled (PostgreSQL without its tools fails at once, while the broker is starting)
    const [broker, pg] = await allStarted([
      startLocalBroker({ dataDir: brokerData, port: kafkaPort, controllerPort, heapMb: 768 }),
      // kept as soon as it runs: stopped and removed by the teardown even when the broker fails to start
      Promise.resolve().then(() => (postgres = startPostgres(pgPort))),
      // once per machine and PGlite version: tests that start on a fresh PGlite directory then copy it instead of running initdb
      // (where the cache cannot be written, each directory is initialised itself)
      preparePgliteTemplate().catch(() => {}),
    ] as const)
    project.provide('kafkaBrokers', broker.bootstrap)
    project.provide('postgresUrl', pg.url)
    project.provide('postgresPort', pg.port)
    project.provide('postgresDir', pg.dir)
  } catch (error) {
    await teardown()
    throw error
  }
  return teardown
}
