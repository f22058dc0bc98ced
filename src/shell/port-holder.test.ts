import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { heldBy, portListeners } from './port-holder.ts'

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
/** a /proc/net/tcp line: 127.0.0.1:port in state `state` of `uid`, socket inode `inode` */
const tcpLine = (port: number, state: string, uid: number, inode: number) =>
  `   0: 0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 ${state} 00000000:00000000 00:00000000 00000000  ${uid}        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`

describe('who listens on a port (/proc)', () => {
  const dirs: string[] = []
  const servers: Server[] = []
  afterEach(async () => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))))
  })
  function fakeProc(tcp: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'kpipe-proc-'))
    dirs.push(dir)
    mkdirSync(join(dir, 'net'))
    writeFileSync(join(dir, 'net', 'tcp'), HEADER + tcp)
    return dir
  }

  it('names this process and its command line for a port it listens on', async () => {
    const server = createServer()
    servers.push(server)
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)))
    const listeners = portListeners(port)
    expect(listeners).toEqual([{ uid: process.getuid!(), pid: process.pid, command: expect.stringContaining('node') }])
    expect(heldBy(port)).toMatch(new RegExp(`^: process ${process.pid} listens there \\(.*node`))
  })

  it('says nothing of a port nobody listens on, nor of a connection that merely uses it', () => {
    const proc = fakeProc(tcpLine(16966, '01', 0, 111) + tcpLine(16966, '06', 0, 0))
    expect(portListeners(16966, proc)).toEqual([])
    expect(heldBy(16966, proc)).toBe('')
  })

  it('a socket of this user that no process holds: one being released', () => {
    const proc = fakeProc(tcpLine(16966, '0A', 1000, 4242) + tcpLine(16967, '0A', 1000, 4343))
    expect(portListeners(16966, proc)).toEqual([{ uid: 1000 }])
    expect(heldBy(16966, proc, 1000)).toBe(': a socket of this user listens there, held by no process it can see (a process that has just ended may still be releasing it)')
    expect(heldBy(16966, proc, 0)).toBe(': a process of another user (uid 1000) listens there')
  })

  it('where the machine does not say (no /proc/net), nothing is added', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kpipe-proc-'))
    dirs.push(dir)
    expect(portListeners(16966, dir)).toBeUndefined()
    expect(heldBy(16966, dir)).toBe('')
  })
})
