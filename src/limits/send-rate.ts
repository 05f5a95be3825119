import { rateLimited } from '../http/errors.ts'

/** Per-agent send rate (contract §17): 60 messages per 1-second bucket; system agents 200. */
export const SEND_RATE = { perSecond: 60, systemPerSecond: 200, groupPerSecond: 20 } as const

export interface TokenResult {
  ok: boolean
  /** Milliseconds to the next 1-second bucket when refused. */
  retryAfterMs: number
}

/** Per-sender 1-second buckets: in memory (one process) or in Redis (every worker and process). */
export interface SendRate {
  take(key: string, limit: number): Promise<TokenResult>
}

/** 1-second buckets aligned to wall-clock seconds, counted in memory: exact within one process. */
export class SendRateLimiter implements SendRate {
  private second = 0
  private counts = new Map<string, number>()

  async take(key: string, limit: number): Promise<TokenResult> {
    return this.takeSync(key, limit)
  }

  takeSync(key: string, limit: number, now = Date.now()): TokenResult {
    const second = Math.floor(now / 1000)
    if (second !== this.second) {
      this.second = second
      this.counts = new Map()
    }
    const n = this.counts.get(key) ?? 0
    if (n >= limit) return { ok: false, retryAfterMs: (second + 1) * 1000 - now }
    this.counts.set(key, n + 1)
    return { ok: true, retryAfterMs: 0 }
  }
}

/** The sender's own bucket (60/s, system agents 200/s), shared by direct and group sends: 429 when full. */
export async function takeSenderToken(rate: SendRate, sender: { id: string; isSystem: boolean }): Promise<void> {
  const t = await rate.take(sender.id, sender.isSystem ? SEND_RATE.systemPerSecond : SEND_RATE.perSecond)
  if (!t.ok) throw rateLimited(t.retryAfterMs, 'Rate limit exceeded: 60 messages per second')
}
