import { describe, expect, it } from 'vitest'
import { isDatabaseUnavailable } from './sink-handler.ts'

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code })

describe('isDatabaseUnavailable: which failures the sink waits out, retrying the same batch', () => {
  it.each([
    ['connection refused', withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    ['refused on every address', new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')])],
    ['connection reset', withCode('ECONNRESET')],
    ['server shut down (57P01)', withCode('57P01', 'terminating connection due to administrator command')],
    ['server starting (57P03)', withCode('57P03', 'the database system is starting up')],
    ['connection failure (08006)', withCode('08006')],
    ['too many connections (53300)', withCode('53300')],
    ['disk full (53100)', withCode('53100')],
    ['serialization failure (40001)', withCode('40001')],
    ['a lost connection, as pg words it', new Error('Connection terminated unexpectedly')],
    ['a pool that could not connect in time', new Error('timeout exceeded when trying to connect')],
  ])('%s: retried', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true)
  })

  it.each([
    ['no such table (42P01)', withCode('42P01', 'relation "performance" does not exist')],
    ['no permission (42501)', withCode('42501', 'permission denied for table performance')],
    ['wrong password (28P01)', withCode('28P01', 'password authentication failed')],
    ['a bug', new TypeError('cannot read properties of undefined')],
    ['not an error', 'oops'],
  ])('%s: stops the sink', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false)
  })
})
