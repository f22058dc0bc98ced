import { createConnection, createServer, type Server, type Socket } from 'node:net'

const PRODUCE = 0

/**
 * A TCP proxy in front of a real broker that is advertised as this proxy (its
 * `advertised.listeners`), so every request of a client passes through it. It can lose one
 * produce acknowledgement: the broker gets the request and writes the batch, the client never
 * gets the answer (its connection is reset), and every connection after that is reset until
 * `heal()` — a broker that wrote a batch and then went away, for as long as the test wants.
 */
export class AckLosingProxy {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  #target = 0
  #armed = false
  #refusing = false
  /** connections reset while refusing */
  refused = 0
  /** produce acknowledgements the client never got */
  lostAcks = 0

  private constructor(server: Server) {
    this.#server = server
  }

  /** Listens on a port of its own (bound before anything is told about it). */
  static async start(): Promise<AckLosingProxy> {
    const server = createServer()
    const proxy = new AckLosingProxy(server)
    server.on('connection', (socket) => proxy.#accept(socket))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', resolve)
    })
    return proxy
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port
  }

  /** the broker's own port, known once the broker is started */
  forwardTo(port: number): void {
    this.#target = port
  }

  /** The answer to the next produce request is lost, and the broker is away from then on until heal(). */
  loseNextProduceAck(): void {
    this.#armed = true
  }

  heal(): void {
    this.#refusing = false
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #accept(client: Socket): void {
    if (this.#refusing || this.#target === 0) {
      this.refused++
      client.resetAndDestroy()
      return
    }
    const broker = createConnection({ host: '127.0.0.1', port: this.#target })
    this.#sockets.add(client).add(broker)
    const end = () => {
      client.destroy()
      broker.destroy()
      this.#sockets.delete(client)
      this.#sockets.delete(broker)
    }
    client.on('error', end).on('close', end)
    broker.on('error', end).on('close', end)

    // requests pass at once; the correlation id of the produce request whose answer is to be lost is noted
    let lost: number | undefined
    const requests = frames((frame) => {
      if (this.#armed && frame.readInt16BE(4) === PRODUCE) {
        this.#armed = false
        lost = frame.readInt32BE(8)
      }
    })
    client.on('data', (chunk: Buffer) => {
      requests(chunk)
      broker.write(chunk)
    })
    // answers pass frame by frame, so that the lost one can be held back whole
    const answers = frames((frame) => {
      if (lost !== undefined && frame.readInt32BE(4) === lost) {
        this.lostAcks++
        this.#refusing = true
        client.resetAndDestroy()
        end()
        return
      }
      if (!client.destroyed) client.write(frame)
    })
    broker.on('data', answers)
  }
}

/** Splits a Kafka byte stream into its size-prefixed frames (the size included). */
function frames(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0)
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    while (pending.length >= 4) {
      const size = 4 + pending.readInt32BE(0)
      if (pending.length < size) break
      onFrame(pending.subarray(0, size))
      pending = pending.subarray(size)
    }
  }
}
