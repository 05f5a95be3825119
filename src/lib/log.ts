import { AsyncLocalStorage } from 'node:async_hooks'
import pino, { type Logger } from 'pino'

/** Per-request context carried through async calls so every log line names its request. */
export interface RequestScope {
  requestId: string
  /** The rate window that applies to this request (X-RateLimit-* headers); the most specific limit noted last wins. */
  rate?: { limit: number; remaining: number; resetAt: number }
}
export const requestScope = new AsyncLocalStorage<RequestScope>()

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const scope = requestScope.getStore()
      return scope ? { request_id: scope.requestId } : {}
    },
  })
}

export type { Logger }
