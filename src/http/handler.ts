import type { Server } from 'bun'
import type { App } from '../app.ts'
import type { AppContext } from '../context.ts'
import { requestScope } from '../lib/log.ts'
import { rateHeaders } from '../limits/rate-window.ts'
import { clientIp } from '../limits/ip.ts'
import { applyCors, preflight } from './cors.ts'
import { ApiError } from './errors.ts'
import { checkQuery, cleanPath, MAX_JSON_BODY_BYTES, parseJsonBody } from './hygiene.ts'
import { withIdempotency } from './idempotency.ts'
import { LONG_POLL } from '../realtime/longpoll.ts'
import { errorCodeOf, internalError, renderError } from './render.ts'
import { setMeta, type RequestMeta } from './request-meta.ts'

/** Origin, path and raw query of a request URL, without allocating a URL object. */
function splitUrl(url: string): { origin: string; path: string; query: string } {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  if (start < 0) return { origin: url, path: '/', query: '' }
  const q = url.indexOf('?', start)
  return q < 0
    ? { origin: url.slice(0, start), path: url.slice(start), query: '' }
    : { origin: url.slice(0, start), path: url.slice(start, q), query: url.slice(q + 1) }
}

/**
 * Invite codes travel in paths (`/setup/ic_…`, `/v1/invites/ic_…/accept`) and are bearer secrets
 * for 24 hours; the server stores only their hash, so request logs must not keep them either.
 */
const INVITE_CODE_IN_PATH = /\/ic_[A-Za-z0-9_-]{8,}/g
export const redactPath = (path: string): string => (path.includes('/ic_') ? path.replace(INVITE_CODE_IN_PATH, '/ic_…') : path)

/** Path of a request URL. */
export const pathOf = (url: string): string => splitUrl(url).path

const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Routes whose body is bytes, not JSON: the signed upload PUT (up to 25 MiB, streamed to storage
 * with its hash computed on the way) and avatar PUTs (up to 5 MiB, sniffed by magic bytes). Their
 * handlers read the stream themselves, with their own limits. (Owners set group avatars for their
 * agents through the dashboard route of the same shape.)
 */
const RAW_BODY_ROUTES = /^\/(?:v1\/(?:uploads\/[^/]+|agents\/[^/]+\/avatar|groups\/[^/]+\/avatar)|dashboard\/agents\/[^/]+\/groups\/[^/]+\/avatar)\/?$/
export const isRawBodyRoute = (method: string, path: string) => method === 'PUT' && RAW_BODY_ROUTES.test(path)

/**
 * Read, size-check and parse the body as JSON into `meta`, before any route runs. Returns the
 * error to answer with, if any.
 */
async function readBody(req: Request, meta: RequestMeta): Promise<ApiError | null> {
  const declared = Number(req.headers.get('content-length') ?? 0)
  if (declared > MAX_JSON_BODY_BYTES) return new ApiError('PAYLOAD_TOO_LARGE', `Request body exceeds ${MAX_JSON_BODY_BYTES} bytes`)
  let bytes: Uint8Array
  try {
    bytes = new Uint8Array(await req.arrayBuffer())
  } catch {
    // The stream broke or passed the server's body limit.
    return new ApiError('PAYLOAD_TOO_LARGE', `Request body exceeds ${MAX_JSON_BODY_BYTES} bytes`)
  }
  const parsed = parseJsonBody(bytes)
  if (parsed instanceof ApiError) return parsed
  meta.rawBody = bytes
  meta.body = parsed
  return null
}

/**
 * Sends accepted and refused, counted here rather than in the route: refusals come from the
 * route (ApiErrors of auth and send), from Elysia's schema check before the route runs, and from
 * the body checks above the router, and this is where all of them end up as a response.
 */
function countSend(ctx: AppContext, meta: RequestMeta, res: Response): void {
  if (res.status === 201) {
    // A 201 means exactly one of `to` and `conversation_id` was given.
    const group = (meta.body as { conversation_id?: unknown } | undefined)?.conversation_id
    ctx.metrics.sendAccepted(group ? 'group' : 'direct')
  } else if (res.status >= 400) {
    ctx.metrics.sendRefused(meta.errorCode ?? errorCodeOf(res) ?? 'INTERNAL_ERROR')
  }
}

/**
 * The outermost HTTP layer, around the Elysia app: request id (echoed when ≤128 chars, else a
 * UUID), client IP (X-Forwarded-For only from TRUSTED_PROXIES), input hygiene (http/hygiene.ts:
 * query strings, path segments and the JSON body, before any route), CORS, Idempotency-Key, the
 * last-resort 500 envelope, and one log line per request.
 */
export function createHttpHandler(ctx: AppContext, app: App) {
  const handle = (req: Request) => app.handle(req)
  return async (req: Request, server: Server<unknown>): Promise<Response> => {
    const startedAt = performance.now()
    const incoming = req.headers.get('x-request-id')
    const requestId = incoming && incoming.length <= 128 ? incoming : crypto.randomUUID()
    const socketIp = server.requestIP(req)?.address ?? 'unknown'
    const meta: RequestMeta = { requestId, ip: clientIp(socketIp, req.headers.get('x-forwarded-for'), ctx.config.trustedProxies), startedAt }
    const url = splitUrl(req.url)
    const path = url.path
    // A long-poll is silent for up to 60 s: lift Bun's 10 s idle timeout for that request.
    if (path === '/v1/messages/stream') server.timeout(req, LONG_POLL.maxTimeout + 15)
    return requestScope.run({ requestId }, async () => {
      let res: Response
      try {
        res = req.method === 'OPTIONS' ? preflight() : await dispatch(req, url, meta)
      } catch (err) {
        ctx.log.error({ err }, 'request failed outside the router')
        res = internalError(requestId)
      }
      applyCors(res.headers)
      res.headers.set('X-Request-Id', requestId)
      const rate = requestScope.getStore()?.rate
      if (rate && meta.agent) for (const [k, v] of Object.entries(rateHeaders(rate))) res.headers.set(k, v)
      const ms = performance.now() - startedAt
      ctx.metrics.httpRequest(req.method, meta.route, res.status, ms / 1000)
      if (req.method === 'POST' && (meta.route ?? path) === '/v1/messages') countSend(ctx, meta, res)
      if (ctx.log.isLevelEnabled('info')) {
        ctx.log.info({ method: req.method, path: redactPath(path), route: meta.route, status: res.status, duration_ms: Math.round(ms * 100) / 100 }, 'request')
      }
      return res
    })
  }

  async function dispatch(req: Request, { origin, path, query }: ReturnType<typeof splitUrl>, meta: RequestMeta): Promise<Response> {
    const raw = isRawBodyRoute(req.method, path)
    const bad = checkQuery(query) ?? (BODYLESS.has(req.method) || raw ? null : await readBody(req, meta))
    if (bad) return renderError(bad)
    const cleaned = cleanPath(path)
    // A raw-body route keeps its request (and stream); a path that needed cleaning names nothing.
    if (raw && cleaned !== null) return renderError(new ApiError('NOT_FOUND', 'Not found'))
    if (cleaned !== null) {
      // The body is already in `meta`; the route never reads the request stream again.
      req = new Request(origin + cleaned + (query ? `?${query}` : ''), { method: req.method, headers: req.headers })
    }
    setMeta(req, meta)
    return withIdempotency(ctx, req, cleaned ?? path, handle, renderError)
  }
}
