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

test('no port is handed out twice by one process, nor the controller port that goes with a broker port', async () => {
  // two picks before anything listens on either (a broker's and a dashboard's) must differ: 2,000
  // random draws from ~22,000 ports would repeat one almost surely
  const broker = await freeBrokerPort()
  const ports = [broker, broker + 1]
  for (let i = 0; i < 2000; i++) ports.push(await freePort())
  expect(new Set(ports).size).toBe(ports.length)
})
