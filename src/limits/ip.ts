import type { AppContext } from '../context.ts'
import { rateLimited } from '../http/errors.ts'
import { getMeta } from '../http/request-meta.ts'

/** Per-IP limits of contract §17, fixed windows. Lifted entirely by `IP_RATE_LIMITS=off`. */
export const IP_LIMITS = {
  register: { limit: 5, windowMs: 3_600_000 },
  registerVerify: { limit: 10, windowMs: 600_000 },
  recover: { limit: 3, windowMs: 3_600_000 },
  recoverVerify: { limit: 10, windowMs: 600_000 },
  rotateKey: { limit: 3, windowMs: 3_600_000 },
  rotateKeyVerify: { limit: 10, windowMs: 600_000 },
  dashboardOtp: { limit: 5, windowMs: 3_600_000 },
  dashboardOtpVerify: { limit: 10, windowMs: 600_000 },
  dashboardRefresh: { limit: 30, windowMs: 60_000 },
  dashboardClaim: { limit: 20, windowMs: 600_000 },
} as const

export async function enforceIpLimit(ctx: AppContext, req: Request, name: keyof typeof IP_LIMITS): Promise<void> {
  if (!ctx.config.ipRateLimits) return
  const { limit, windowMs } = IP_LIMITS[name]
  const r = await ctx.counters.fixed(`ip:${name}:${getMeta(req).ip}`, limit, windowMs)
  if (!r.allowed) {
    const seconds = Math.max(1, Math.ceil(r.retryAfterMs / 1000))
    throw rateLimited(r.retryAfterMs, `Too many requests. Try again in ${seconds} seconds.`)
  }
}

/** The client address: the socket's, or X-Forwarded-For's first hop when the socket is a trusted proxy. */
export function clientIp(socketIp: string, forwardedFor: string | null, trusted: Set<string>): string {
  if (forwardedFor && trusted.has(socketIp)) {
    const first = forwardedFor.split(',')[0]?.trim()
    if (first) return first
  }
  return socketIp
}
