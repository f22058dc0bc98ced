import { NetworkError, ResponseError } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'
import { clientOptions, retryDelay } from './connection.ts'

describe("the client's wait before it repeats a request", () => {
  // as the client reports a coordinator still completing the last transaction (AddOffsetsToTxn, API 25)
  const concurrent = new ResponseError(25, 0, { '': [51, null] }, {})

  it('is short at first after CONCURRENT_TRANSACTIONS, and no shorter in all than for any other error', () => {
    expect(concurrent.findBy('apiId', 'CONCURRENT_TRANSACTIONS')).toBeTruthy()
    const waits = [1, 2, 3].map((attempt) => retryDelay(undefined, 'addOffsetsToTransaction', attempt, 3, concurrent))
    expect(waits).toEqual([20, 250, 500])
    // the client's three retries still wait at least as long as with 250 ms each: a busy coordinator is not given up on sooner
    expect(waits.reduce((a, b) => a + b)).toBeGreaterThanOrEqual(3 * retryDelay(undefined, 'produce', 1, 3, new Error('other')))
  })

  it('is 250 ms for anything else', () => {
    expect(retryDelay(undefined, 'produce', 1, 3, new ResponseError(0, 11, { '/0': [6, null] }, {}))).toBe(250)
    expect(retryDelay(undefined, 'fetch', 1, 3, new NetworkError('Connection closed'))).toBe(250)
    expect(retryDelay(undefined, 'fetch', 1, 3, new Error('not the client'))).toBe(250)
    expect(retryDelay(undefined, 'fetch', 1, 3, null)).toBe(250)
  })

  it('is what every client of kpipe is given', () => {
    expect(clientOptions({ bootstrapBrokers: ['localhost:9092'], clientId: 'kpipe-test' }).retryDelay).toBe(retryDelay)
  })
})
