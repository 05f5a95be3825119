import { rateLimited } from '../http/errors.ts'
import { noteRate } from './rate-window.ts'

/** Per-agent send rate (contract §17): 60 messages per 1-second bucket; system agents 200. */
export const SEND_RATE = { perSecond: 60, systemPerSecond: 200, groupPerSecond: 20 } as const

export interface TokenResult {
  ok: boolean
  /** Milliseconds to the next 1-second bucket when refused. */
  retryAfterMs: number
  /** The instant the token was counted at (its bucket is this wall-clock second). */
  at: number
  /** Tokens in this second's bucket, this one included (when known). */
  count?: number
}

/** Per-sender 1-second buckets: in memory (one process) or in Redis (every worker and process). */
export interface SendRate {
  /** Count one token in the bucket of `now` (default: the current time). */
  take(key: string, limit: number, now?: number): Promise<TokenResult>
}

/** 1-second buckets aligned to wall-clock seconds, counted in memory: exact within one process. */
export class SendRateLimiter implements SendRate {
  /** Counts per wall-clock second; a few recent seconds are kept, since `now` may lag the clock a little. */
  private readonly buckets = new Map<number, Map<string, number>>()

  async take(key: string, limit: number, now = Date.now()): Promise<TokenResult> {
    return this.takeSync(key, limit, now)
  }

  takeSync(key: string, limit: number, now = Date.now()): TokenResult {
    const second = Math.floor(now / 1000)
    let counts = this.buckets.get(second)
    if (!counts) {
      this.buckets.set(second, (counts = new Map()))
      for (const s of this.buckets.keys()) if (s < second - 5) this.buckets.delete(s)
    }
    const n = counts.get(key) ?? 0
    if (n >= limit) return { ok: false, retryAfterMs: (second + 1) * 1000 - now, at: now, count: n }
    counts.set(key, n + 1)
    return { ok: true, retryAfterMs: 0, at: now, count: n + 1 }
  }
}

/**
 * The sender's own bucket (60/s, system agents 200/s), shared by direct and group sends: 429 when
 * full. Returns the admission instant: the message's `created_at`, so that the second a message
 * claims is the second whose bucket admitted it, even when the counter's round trip is slow.
 */
export async function takeSenderToken(rate: SendRate, sender: { id: string; isSystem: boolean }): Promise<Date> {
  const limit = sender.isSystem ? SEND_RATE.systemPerSecond : SEND_RATE.perSecond
  const t = await rate.take(sender.id, limit)
  noteRate(limit, t.ok ? (t.count ?? 1) : limit, (Math.floor(t.at / 1000) + 1) * 1000)
  if (!t.ok) throw rateLimited(t.retryAfterMs, 'Rate limit exceeded: 60 messages per second')
  return new Date(t.at)
}
