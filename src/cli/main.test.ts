import { expect, test } from 'vitest'
import { runKpipe } from '../../test/support/cli.ts'
import { freePort } from '../shell/broker/local-broker.ts'

test('an unexpected failure is one line with its cause; the stack only with LOG_LEVEL=debug', async () => {
  // nothing listens on the port: the client gives up, and the error is not one kpipe knows
  const brokers = `127.0.0.1:${await freePort()}`
  const plain = runKpipe(['tail', 'some-topic', '--brokers', brokers], { LOG_LEVEL: 'info' })
  expect(plain.code).toBe(1)
  expect(plain.stderr.trimEnd().split('\n'), plain.stderr).toHaveLength(1)
  expect(plain.stderr).toMatch(/^kpipe: .*ECONNREFUSED.*LOG_LEVEL=debug/)
  expect(plain.stderr).not.toMatch(/\n\s+at /)

  const debug = runKpipe(['tail', 'some-topic', '--brokers', brokers], { LOG_LEVEL: 'debug' })
  expect(debug.code).toBe(1)
  expect(debug.stderr).toMatch(/\n\s+at /)
  expect(debug.stderr).toMatch(/kpipe: .*ECONNREFUSED/)
})
