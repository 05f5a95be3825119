import type { Server } from 'bun'
import type { App } from '../app.ts'
import type { AppContext } from '../context.ts'
import { requestScope } from '../lib/log.ts'
import { clientIp } from '../limits/ip.ts'
import { applyCors, preflight } from './cors.ts'
import { withIdempotency } from './idempotency.ts'
import { internalError, renderError } from './render.ts'
import { setMeta } from './request-meta.ts'

/** Path of a request URL without allocating a URL object. */
export function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  if (start < 0) return '/'
  const q = url.indexOf('?', start)
  return q < 0 ? url.slice(start) : url.slice(start, q)
}

/**
 * The outermost HTTP layer, around the Elysia app: request id (echoed when ≤128 chars, else a
 * UUID), client IP (X-Forwarded-For only from TRUSTED_PROXIES), CORS, Idempotency-Key, the
 * last-resort 500 envelope, and one log line per request.
 */
export function createHttpHandler(ctx: AppContext, app: App) {
  const handle = (req: Request) => app.handle(req)
  return async (req: Request, server: Server<unknown>): Promise<Response> => {
    const startedAt = performance.now()
    const incoming = req.headers.get('x-request-id')
    const requestId = incoming && incoming.length <= 128 ? incoming : crypto.randomUUID()
    const socketIp = server.requestIP(req)?.address ?? 'unknown'
    const meta = { requestId, ip: clientIp(socketIp, req.headers.get('x-forwarded-for'), ctx.config.trustedProxies), startedAt }
    setMeta(req, meta)
    const path = pathOf(req.url)
    return requestScope.run({ requestId }, async () => {
      let res: Response
      try {
        res = req.method === 'OPTIONS' ? preflight() : await withIdempotency(ctx, req, path, handle, renderError)
      } catch (err) {
        ctx.log.error({ err }, 'request failed outside the router')
        res = internalError()
      }
      applyCors(res.headers)
      res.headers.set('X-Request-Id', requestId)
      const ms = performance.now() - startedAt
      if (ctx.log.isLevelEnabled('info')) {
        ctx.log.info({ method: req.method, path, route: (meta as { route?: string }).route, status: res.status, duration_ms: Math.round(ms * 100) / 100 }, 'request')
      }
      return res
    })
  }
}
