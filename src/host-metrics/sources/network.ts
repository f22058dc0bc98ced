/** Bytes received and sent through one network interface since it came up. */
export interface InterfaceCounters {
  name: string
  received: number
  sent: number
}

/** Linux `/proc/net/dev`: two header lines, then `name: rx_bytes rx_packets … tx_bytes …` (tx_bytes is field 9). */
export function parseNetDev(netDev: string): InterfaceCounters[] {
  const interfaces: InterfaceCounters[] = []
  for (const line of netDev.split('\n')) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim()
    const fields = line.slice(colon + 1).trim().split(/\s+/)
    if (fields.length < 9 || name === '') continue
    const received = Number(fields[0])
    const sent = Number(fields[8])
    if (Number.isSafeInteger(received) && Number.isSafeInteger(sent)) interfaces.push({ name, received, sent })
  }
  return interfaces
}

/** Loopback traffic never leaves the machine; counting it would inflate "network" figures. */
export const isLoopback = (name: string) => name === 'lo' || name.startsWith('lo:')

/**
 * What the sampler remembers between readings so that the host's totals never go backwards:
 * the last counters per interface, and the bytes of interfaces that vanished or whose
 * counters restarted (a driver reset, a 32-bit wrap), carried into the total.
 */
export interface NetworkState {
  last: Map<string, { received: number; sent: number }>
  carriedReceived: number
  carriedSent: number
}

export interface NetworkTotals {
  bytes_received: number
  bytes_sent: number
  state: NetworkState
}

/**
 * Cumulative bytes over every interface but loopback. Within one boot the totals are
 * monotonic even when interfaces come and go; pass no previous state after a reboot.
 */
export function networkTotals(interfaces: InterfaceCounters[], previous?: NetworkState): NetworkTotals {
  const state: NetworkState = {
    last: new Map(),
    carriedReceived: previous?.carriedReceived ?? 0,
    carriedSent: previous?.carriedSent ?? 0,
  }
  let received = 0
  let sent = 0
  for (const nic of interfaces) {
    if (isLoopback(nic.name)) continue
    const before = previous?.last.get(nic.name)
    if (before && nic.received < before.received) state.carriedReceived += before.received
    if (before && nic.sent < before.sent) state.carriedSent += before.sent
    state.last.set(nic.name, { received: nic.received, sent: nic.sent })
    received += nic.received
    sent += nic.sent
  }
  for (const [name, gone] of previous?.last ?? []) {
    if (state.last.has(name)) continue
    state.carriedReceived += gone.received
    state.carriedSent += gone.sent
  }
  return { bytes_received: received + state.carriedReceived, bytes_sent: sent + state.carriedSent, state }
}
