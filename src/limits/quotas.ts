import type { AppContext } from '../context.ts'
import type { RawSql } from '../db/client.ts'
import { ApiError } from '../http/errors.ts'

const DAY_MS = 86_400_000

/**
 * Plan quotas (issue 14): configured by the operator (QUOTA_*), off by default. Exceeding one is
 * 403 `LIMIT_REACHED` with `details` — a plan limit, not a rate limit, so clients do not retry
 * it the way they retry a 429. (The contract's own LIMIT_REACHED, the 6th webhook, stays 400.)
 */
export function quotaReached(quota: string, limit: number, used: number, resetsAt?: number): ApiError {
  return new ApiError(
    'LIMIT_REACHED',
    `Plan limit reached: ${quota.replace(/_/g, ' ')} (${limit})`,
    { quota, limit, used, ...(resetsAt ? { resets_at: new Date(resetsAt).toISOString() } : {}) },
    undefined,
    undefined,
    403,
  )
}

/** One message of the sender's daily quota (UTC days), counted right before the write. */
export async function spendMessageQuota(ctx: AppContext, sender: { id: string; isSystem: boolean }): Promise<void> {
  const limit = ctx.config.quotas.messagesPerDay
  if (limit <= 0 || sender.isSystem) return
  const r = await ctx.counters.fixed(`quota:msg:${sender.id}`, limit, DAY_MS)
  if (!r.allowed) throw quotaReached('messages_per_day', limit, r.count, r.resetAt)
}

/** Before a claim, on its transaction: the owner's plan allows one more agent. */
export async function checkAgentQuota(q: RawSql, limit: number, ownerId: string): Promise<void> {
  if (limit <= 0) return
  const [row] = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM owner_claims WHERE owner_id = $1`, [ownerId])
  const used = Number(row?.n ?? 0)
  if (used >= limit) throw quotaReached('agents_per_owner', limit, used)
}
