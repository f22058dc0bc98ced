import type { FastifyPluginAsync } from 'fastify'

export interface Asset {
  body: Buffer
  type: string
}

/** The page and its assets (read once at start). */
export const pageRoutes: FastifyPluginAsync<{ assets: Map<string, Asset> }> = async (app, { assets }) => {
  for (const [path, asset] of assets) {
    app.get(path, async (_request, reply) => {
      void reply.type(asset.type).header('cache-control', path === '/' ? 'no-cache' : 'public, max-age=300')
      if (path === '/') {
        void reply.header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
      }
      return reply.send(asset.body)
    })
  }
}
