import { tracingChannel } from 'node:diagnostics_channel'
import type { Socket } from 'node:net'
import type { EventEmitter } from 'node:events'

// The client's channels, taken by name: channels are the process's, one per name, so these are
// the client's own `connectionsConnectsChannel` and `connectionsApiChannel` (its test checks the
// names) without importing the client here: the CLI's start-up (`kpipe --help`) imports this
// module through connection.ts, and the client costs ~0.3 s of CPU to load.
export const CONNECTS_CHANNEL = 'plt:kafka:connections:connects'
export const API_CHANNEL = 'plt:kafka:connections:api'
const connectionsConnectsChannel = tracingChannel(CONNECTS_CHANNEL)
const connectionsApiChannel = tracingChannel(API_CHANNEL)

/**
 * Which brokers have answered this process, and which closed a connection without ever
 * answering: what tells a listener that expects TLS or SASL (it closes every plain-text
 * connection before answering) from a broker that restarts (it had answered before, or it
 * refuses the connection). Read from the client's diagnostics channels, so every client of
 * the process counts without any of them being wrapped.
 */

/** ApiVersions, SaslHandshake and SaslAuthenticate: a listener answers these before the client is let in. */
const HANDSHAKE_APIS = new Set([17, 18, 36])

/** brokers (host:port) that answered a request past the handshake */
const answered = new Set<string>()
/** per broker, the connections it ended (no reset, not closed by us) before answering any such request */
const closedEarly = new Map<string, number>()
/**
 * A listener of another protocol closes every connection; a broker that shuts down closes the
 * one it had just accepted, then refuses. Two such closes tell the first from the second.
 */
const CLOSES_OF_A_LISTENER = 2
const brokerOf = new WeakMap<object, string>()
let watching = false

interface ConnectionLike extends EventEmitter {
  socket?: Socket
  host?: string
  port?: number
}

/** Starts watching (once per process; clientOptions calls it for every client kpipe makes). */
export function watchListeners(): void {
  if (watching) return
  watching = true
  connectionsConnectsChannel.asyncEnd.subscribe((message) => {
    const { connection, host, port, error } = message as { connection: ConnectionLike; host?: string; port?: number; error?: unknown }
    if (error !== undefined || host === undefined || port === undefined) return
    const broker = `${host}:${port}`
    brokerOf.set(connection, broker)
    let ours = false
    let peerEnded = false
    let failed = false
    // closed by the client itself (pool shutdown, a request timed out): says nothing about the listener
    connection.once('closing', () => (ours = true))
    // the listener ended the connection (FIN); a reset (a broker process that died) is an error instead
    connection.socket?.once('end', () => (peerEnded = true))
    connection.socket?.once('error', () => (failed = true))
    // emitted before the client fails the requests in flight: recorded before anyone asks
    connection.once('close', () => {
      if (peerEnded && !ours && !failed && !answered.has(broker)) closedEarly.set(broker, (closedEarly.get(broker) ?? 0) + 1)
    })
  })
  connectionsApiChannel.asyncStart.subscribe((message) => {
    const { connection, apiKey } = message as { connection: ConnectionLike; apiKey?: number }
    if (apiKey === undefined || HANDSHAKE_APIS.has(apiKey)) return
    const broker = brokerOf.get(connection) ?? (connection.host !== undefined ? `${connection.host}:${connection.port}` : undefined)
    if (broker === undefined || answered.has(broker)) return
    answered.add(broker)
    closedEarly.delete(broker)
  })
}

/**
 * One of `brokers` (host:port, e.g. the bootstrap brokers of the failing client) that has closed
 * connections before answering and has never answered this process; undefined if none. Only
 * those: a process can talk to several clusters, and a listener of one says nothing about an
 * error at another.
 */
export function brokerClosingBeforeAnswering(brokers: readonly string[]): string | undefined {
  for (const broker of brokers) if ((closedEarly.get(broker) ?? 0) >= CLOSES_OF_A_LISTENER && !answered.has(broker)) return broker
  return undefined
}
