import { createServer, type Server, type Socket } from 'node:net'
import { Admin, connectionsApiChannel, connectionsConnectsChannel } from '@platformatic/kafka'
import { afterAll, describe, expect, test } from 'vitest'
import { clientOptions, type KafkaConnection } from './connection.ts'
import { describe as describeError, errorChain, isRetriableKafkaError, kafkaSetupError } from './connection-errors.ts'
import { API_CHANNEL, CONNECTS_CHANNEL, brokerClosingBeforeAnswering } from './listener-watch.ts'

const servers: Server[] = []
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
})

/** A TCP listener on 127.0.0.1 that does `onRequest` with each connection's first bytes; resolves to its host:port. */
async function listener(onRequest: (socket: Socket, server: Server) => void): Promise<string> {
  const server = createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => onRequest(socket, server))
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return `127.0.0.1:${address.port}`
}

/** What asking `broker` for metadata ends in, with the client's own retries (as kpipe's clients make them). */
async function metadataError(connection: KafkaConnection): Promise<unknown> {
  const admin = new Admin(clientOptions(connection))
  try {
    await admin.metadata({ topics: [] })
    throw new Error(`${connection.bootstrapBrokers.join(',')} answered`)
  } catch (error) {
    return error
  } finally {
    await admin.close().catch(() => {})
  }
}

test("the channels watched are the client's, by name", () => {
  expect(CONNECTS_CHANNEL).toBe(connectionsConnectsChannel.name)
  expect(API_CHANNEL).toBe(connectionsApiChannel.name)
})

describe('a listener that closes every connection, in a process that talks to two clusters', () => {
  test('is named for an error of its own cluster, and never for an outage at the other', async () => {
    // cluster X: a listener of another protocol closes every connection before answering
    const x = await listener((socket) => socket.end())
    // cluster Y: a broker that shuts down closes the connection it had accepted, then refuses
    const y = await listener((socket, server) => {
      server.close()
      socket.end()
    })
    const atX: KafkaConnection = { bootstrapBrokers: [x], clientId: 'kpipe-test-x' }
    const atY: KafkaConnection = { bootstrapBrokers: [y], clientId: 'kpipe-test-y' }

    const errorAtX = await metadataError(atX)
    expect(brokerClosingBeforeAnswering([x])).toBe(x)
    expect(kafkaSetupError(errorAtX, atX)?.message).toBe(`Kafka at ${x} closed the connection before answering: the listener expects TLS or SASL`)
    expect(isRetriableKafkaError(errorAtX, atX)).toBe(false)

    // Y closed a connection too, and the client saw "Connection closed" there: an outage, retried
    const errorAtY = await metadataError(atY)
    expect(errorChain(errorAtY).some((e) => e instanceof Error && /^Connection closed/.test(e.message))).toBe(true)
    expect(brokerClosingBeforeAnswering([y])).toBeUndefined()
    expect(kafkaSetupError(errorAtY, atY)).toBeUndefined()
    expect(isRetriableKafkaError(errorAtY, atY)).toBe(true)
    expect(describeError(errorAtY, atY)).not.toContain(x)

    // a client of both clusters: the listener is one of its brokers
    expect(brokerClosingBeforeAnswering([y, x])).toBe(x)
  }, 60_000)
})
