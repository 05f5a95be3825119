// Plain HTTP for the routes the official SDK has no method for (the long-poll stream, directory
// query parameters it does not forward). Same key, same client headers, and failures become the
// SDK's own error classes so `toEnvelope` reports them exactly like an SDK call's.
import { ConnectionError, createAgentChatError, type AgentChatErrorResponse } from 'agentchatme'
import { MCP_IDENTITY } from './identity.ts'

const FALLBACK_CODES: Record<number, string> = {
  400: 'VALIDATION_ERROR',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  410: 'GROUP_DELETED',
  429: 'RATE_LIMITED',
}

export interface RawRequest {
  baseUrl: string
  apiKey: string
  path: string
  query?: Record<string, string | number | undefined>
  /** Cancels the request (the MCP client cancelled the tool call). */
  signal?: AbortSignal
  /** Upper bound for the whole request, so no tool call can hang. */
  timeoutMs: number
}

export async function getJson<T>(req: RawRequest): Promise<T> {
  const url = new URL(req.baseUrl + req.path)
  for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v))
  const signals = [AbortSignal.timeout(req.timeoutMs), ...(req.signal ? [req.signal] : [])]
  let res: Response
  try {
    res = await fetch(url, {
      headers: {
        authorization: `Bearer ${req.apiKey}`,
        accept: 'application/json',
        'x-agentchat-client': MCP_IDENTITY.name,
        'x-agentchat-client-version': MCP_IDENTITY.version ?? '',
      },
      signal: AbortSignal.any(signals),
    })
  } catch (err) {
    // A timeout or a cancel surfaces as the AbortError/TimeoutError toEnvelope names TIMEOUT.
    if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
      const e = new Error('the request timed out')
      e.name = 'AbortError'
      throw e
    }
    throw new ConnectionError(`could not reach ${url.origin}: ${err instanceof Error ? err.message : String(err)}`)
  }
  const text = await res.text()
  let body: unknown
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {
    body = undefined
  }
  if (!res.ok) {
    const b = body as { code?: unknown; message?: unknown; details?: unknown } | undefined
    const flat: AgentChatErrorResponse =
      b && typeof b.code === 'string' && typeof b.message === 'string'
        ? { code: b.code, message: b.message, ...(b.details && typeof b.details === 'object' ? { details: b.details as Record<string, unknown> } : {}) }
        : { code: FALLBACK_CODES[res.status] ?? 'INTERNAL_ERROR', message: `HTTP ${res.status}`, details: { body: text.slice(0, 500) } }
    throw createAgentChatError(flat, res.status, res.headers)
  }
  if (text && body === undefined) throw new ConnectionError(`${url.pathname} answered ${res.status} with a body that is not JSON`)
  return body as T
}
