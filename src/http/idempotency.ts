import type { AppContext } from '../context.ts'
import { sha256Hex } from '../lib/crypto.ts'
import { agentForKey, requestKey } from './auth.ts'
import { fail, type ApiError } from './errors.ts'
import { getMeta } from './request-meta.ts'

const KEY_RE = /^[A-Za-z0-9_-]{8,128}$/
const MAX_CACHED_BODY = 64 * 1024
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
const DROP_HEADERS = new Set(['content-length', 'transfer-encoding', 'x-request-id'])

/**
 * Stripe-style Idempotency-Key handling (contract §1.7), wrapped around the whole app so it sees
 * the raw request body and the final response. Acts on every authenticated mutating route when
 * the header is present, except `POST /v1/messages`, which dedupes on `client_msg_id`.
 */
export async function withIdempotency(
  ctx: AppContext,
  req: Request,
  path: string,
  handle: (req: Request) => Promise<Response>,
  renderError: (e: ApiError) => Response,
): Promise<Response> {
  const key = req.headers.get('idempotency-key')
  if (key === null || SAFE_METHODS.has(req.method) || (req.method === 'POST' && path === '/v1/messages')) {
    return handle(req)
  }
  const agent = await agentForKey(ctx, requestKey(req.headers))
  if (!agent) return handle(req) // unauthenticated: the route answers 401 (or is a public route)
  if (!KEY_RE.test(key)) return renderError(fail('IDEMPOTENCY_KEY_INVALID'))

  // The outer handler read the raw body once (http/handler.ts); the fingerprint covers those bytes.
  const raw = getMeta(req).rawBody ?? new Uint8Array(0)
  const fingerprint = sha256Hex(Buffer.concat([Buffer.from(`${req.method}\0${path}\0`), raw]))
  let claim
  try {
    claim = await ctx.idempotency.claim(agent.id, key, fingerprint)
  } catch (err) {
    ctx.log.warn({ err }, 'idempotency store unavailable; passing through')
    return handle(req) // fail open (contract §1.7)
  }
  if (claim.kind === 'conflict') return renderError(fail('IDEMPOTENCY_KEY_CONFLICT'))
  if (claim.kind === 'in_progress') return renderError(fail('IDEMPOTENT_IN_PROGRESS'))
  if (claim.kind === 'replay') {
    const headers = new Headers(claim.response.headers)
    headers.set('Idempotent-Replay', 'true')
    headers.set('X-Request-Id', getMeta(req).requestId)
    return new Response(claim.response.body, { status: claim.response.status, headers })
  }

  let res: Response
  try {
    res = await handle(req)
  } catch (err) {
    await ctx.idempotency.release(agent.id, key).catch(() => {})
    throw err
  }
  const body = await res.text()
  const headers: Record<string, string> = {}
  res.headers.forEach((v, k) => {
    if (!DROP_HEADERS.has(k)) headers[k] = v
  })
  try {
    if (res.status >= 500 || body.length > MAX_CACHED_BODY) await ctx.idempotency.release(agent.id, key)
    else await ctx.idempotency.complete(agent.id, key, fingerprint, { status: res.status, headers, body })
  } catch (err) {
    ctx.log.warn({ err }, 'could not record idempotent response')
  }
  return new Response(body, { status: res.status, headers: res.headers })
}
