import { readFileSync, readdirSync, readlinkSync } from 'node:fs'

/** A socket listening on a TCP port, as Linux's /proc/net/tcp and tcp6 show it. */
export interface PortListener {
  /** the socket's owner */
  uid: number
  /** the process that has it open, when this user can see one (the first found) */
  pid?: number
  /** that process's command line, shortened */
  command?: string
}

const LISTEN = '0A'

/**
 * The sockets listening on `port` (any address), with the process that holds each; undefined
 * where the machine does not say (not Linux). Reads /proc: for a one-line error, not a hot path.
 */
export function portListeners(port: number, proc = '/proc'): PortListener[] | undefined {
  // by the link a descriptor of its socket reads as: socket:[inode]
  const listeners = new Map<string, PortListener>()
  let said = false
  for (const table of ['tcp', 'tcp6']) {
    let text: string
    try {
      text = readFileSync(`${proc}/net/${table}`, 'utf8')
    } catch {
      continue
    }
    said = true
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (fields.length < 10 || fields[3] !== LISTEN) continue
      const local = fields[1]!
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) !== port) continue
      listeners.set(`socket:[${fields[9]!}]`, { uid: Number(fields[7]) })
    }
  }
  if (!said) return undefined
  if (listeners.size === 0) return []
  for (const entry of readdirSync(proc)) {
    if (!/^\d+$/.test(entry)) continue
    let fds: string[]
    try {
      fds = readdirSync(`${proc}/${entry}/fd`)
    } catch {
      continue // another user's, or gone
    }
    for (const fd of fds) {
      let target: string
      try {
        target = readlinkSync(`${proc}/${entry}/fd/${fd}`)
      } catch {
        continue
      }
      const listener = listeners.get(target)
      if (listener && listener.pid === undefined) {
        listener.pid = Number(entry)
        listener.command = commandOf(`${proc}/${entry}/cmdline`)
      }
    }
  }
  return [...listeners.values()]
}

function commandOf(file: string): string | undefined {
  try {
    const command = readFileSync(file, 'utf8').split('\0').filter((arg) => arg !== '').join(' ')
    return command.length > 120 ? `${command.slice(0, 117)}...` : command
  } catch {
    return undefined
  }
}

/**
 * What to add to "port N is already in use": who listens there, when this machine says. A socket
 * of this user that no process holds is one a process that has just ended still releases.
 */
export function heldBy(port: number, proc = '/proc', uid = process.getuid?.()): string {
  const listeners = portListeners(port, proc)
  if (listeners === undefined || listeners.length === 0) return ''
  const listener = listeners.find((l) => l.pid !== undefined) ?? listeners[0]!
  if (listener.pid !== undefined) return `: process ${listener.pid} listens there${listener.command ? ` (${listener.command})` : ''}`
  if (listener.uid === uid) return ': a socket of this user listens there, held by no process it can see (a process that has just ended may still be releasing it)'
  return `: a process of another user (uid ${listener.uid}) listens there`
}
