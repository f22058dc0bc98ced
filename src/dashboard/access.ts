import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import { UserError } from '../shell/errors.ts'

/**
 * Who may see the dashboard. Bound to loopback, only this machine can reach it. Bound to any
 * other address, it must carry a token: without KPIPE_DASHBOARD_TOKEN it refuses to start.
 */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '')
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true
  if (isIP(h) === 4) return h.startsWith('127.')
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)
  return mapped !== null && mapped[1]!.startsWith('127.')
}

export function assertBindAllowed(host: string, token: string | undefined): void {
  if (isLoopback(host) || token) return
  throw new UserError(
    `refusing to serve the dashboard on HOST=${host} without KPIPE_DASHBOARD_TOKEN: anyone who can reach that address would see it. ` +
      'Set KPIPE_DASHBOARD_TOKEN to a secret of at least 16 characters, or bind to 127.0.0.1',
  )
}

const digest = (text: string) => createHash('sha256').update(text).digest()

/** Compares in constant time (over the digests, so the length of the token does not leak either). */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined || given === '') return false
  return timingSafeEqual(digest(expected), digest(given))
}

export const TOKEN_COOKIE = 'kpipe_token'

/** The token a request carries: `Authorization: Bearer …`, `?token=…`, or the cookie the page set. */
export function presentedToken(headers: { authorization?: string | undefined; cookie?: string | undefined }, query: unknown): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '')
  if (bearer) return bearer[1]
  if (query && typeof query === 'object' && typeof (query as Record<string, unknown>).token === 'string') return (query as Record<string, string>).token
  for (const part of (headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=')
    if (name === TOKEN_COOKIE) return decodeURIComponent(value.join('='))
  }
  return undefined
}
