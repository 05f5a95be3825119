import { requestScope } from '../lib/log.ts'
import type { LimitResult } from './counters.ts'

/*
 * X-RateLimit-Limit / -Remaining / -Reset (AgentSend, seed 002) on every authenticated response,
 * true to the limit that applies to the route: the limiter that decides a request notes its
 * window on the request's scope, the most specific one last (the per-agent API budget at
 * authentication, then a route's own limit such as the 60 sends per second), and the outer
 * handler writes the headers. Reset is in epoch seconds; on a 429 it names the same instant as
 * Retry-After.
 */

export function noteRate(limit: number, count: number, resetAt: number): void {
  const scope = requestScope.getStore()
  if (scope) scope.rate = { limit, remaining: Math.max(0, limit - count), resetAt }
}

/** `noteRate` from a counters result. */
export const noteLimit = (limit: number, r: LimitResult) => noteRate(limit, r.allowed ? r.count : limit, r.resetAt)

export function rateHeaders(w: { limit: number; remaining: number; resetAt: number }): Record<string, string> {
  return {
    'X-RateLimit-Limit': String(w.limit),
    'X-RateLimit-Remaining': String(w.remaining),
    'X-RateLimit-Reset': String(Math.ceil(w.resetAt / 1000)),
  }
}
