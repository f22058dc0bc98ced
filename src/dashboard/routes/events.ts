import type { ServerResponse } from 'node:http'
import type { FastifyPluginAsync } from 'fastify'
import type { LoginError } from '../core/login-stats.ts'
import type { LiveFeed } from '../live-feed.ts'
import { errorView } from './logins.ts'

/** `/api/events`: the live feed as Server-Sent Events. `streams` lets the server end them on close. */
export const eventRoutes: FastifyPluginAsync<{ feed: LiveFeed; streams: Set<ServerResponse> }> = async (app, { feed, streams }) => {
  app.get('/api/events', (request, reply) => {
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
    res.write('retry: 2000\n\n')
    send('hello', { time: new Date().toISOString() })
    const onSample = (e: unknown) => send('sample', e)
    const onSummary = (e: unknown) => send('summary', e)
    const onProcessing = (e: unknown) => send('processing', e)
    const onError = (e: LoginError) => send('login-error', errorView(e))
    feed.on('sample', onSample)
    feed.on('summary', onSummary)
    feed.on('processing', onProcessing)
    feed.on('login-error', onError)
    // A comment every 15 s keeps proxies from closing an idle stream.
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000)
    streams.add(res)
    const close = () => {
      clearInterval(keepAlive)
      feed.off('sample', onSample)
      feed.off('summary', onSummary)
      feed.off('processing', onProcessing)
      feed.off('login-error', onError)
      streams.delete(res)
    }
    request.raw.on('close', close)
    res.on('close', close)
  })
}
