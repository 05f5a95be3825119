import type { AgentRecord } from '../modules/agents/record.ts'
import type { ErrorCode } from './errors.ts'

/** Facts about one request, shared between the outer handler and the Elysia routes. */
export interface RequestMeta {
  requestId: string
  ip: string
  startedAt: number
  /** Set once the request is authenticated, so later stages do not look the key up again. */
  agent?: AgentRecord
  route?: string
  /** The code of the error envelope Elysia's error hook answered with (Elysia copies that Response). */
  errorCode?: ErrorCode
  /** The raw body bytes (read once by the outer handler; the Idempotency-Key fingerprint uses them). */
  rawBody?: Uint8Array
  /** The body parsed as JSON and checked by http/hygiene.ts; Elysia's parse hook hands it to the route. */
  body?: unknown
}

const metas = new WeakMap<Request, RequestMeta>()

export const setMeta = (req: Request, meta: RequestMeta) => metas.set(req, meta)
export function getMeta(req: Request): RequestMeta {
  let m = metas.get(req)
  if (!m) {
    // Requests that did not come through the outer handler (app.handle in unit tests).
    m = { requestId: crypto.randomUUID(), ip: '127.0.0.1', startedAt: performance.now() }
    metas.set(req, m)
  }
  return m
}
