import { createServer } from 'node:net'
import { expect, test } from 'vitest'
import { ephemeralPortsFrom, freeBrokerPort, freePort, portInUse } from './local-broker.ts'

test('freePort: a port free to listen on, below the range outgoing connections take their ports from', async () => {
  const lowest = ephemeralPortsFrom()
  // this machine says where that range starts (Linux); the check below is the point of the test
  expect(lowest).toBeGreaterThan(11_000)
  const ports = new Set<number>()
  for (let i = 0; i < 20; i++) {
    const port = await freePort()
    expect(port).toBeGreaterThanOrEqual(10_000)
    expect(port).toBeLessThan(lowest!)
    ports.add(port)
  }
  // drawn, not one fixed port
  expect(ports.size).toBeGreaterThan(1)
  const port = await freePort()
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve))
  try {
    expect(await portInUse(port)).toBe(true)
  } finally {
    await new Promise((resolve) => server.close(resolve))
  }
})

test('freeBrokerPort: the port and the next one (the controller\'s) are both free', async () => {
  const port = await freeBrokerPort()
  expect(await portInUse(port)).toBe(false)
  expect(await portInUse(port + 1)).toBe(false)
})
