import type { Bus } from '../../bus/bus.ts'
import type { RawSql } from '../../db/client.ts'
import { LazyCache } from '../../lib/lazy-cache.ts'

/**
 * Each agent's mutes, cached for the push path: a muted sender or conversation suppresses the
 * live `message.new` wake-up only — the envelope is still written and synced.
 */
export class MuteCache {
  private readonly cache: LazyCache<string, Map<string, number | null>>

  constructor(
    sql: RawSql,
    private readonly bus: Bus,
  ) {
    this.cache = new LazyCache(async (muterId) => {
      const rows = await sql.query<{ target_kind: string; target_id: string; muted_until: Date | string | null }>(
        'SELECT target_kind, target_id, muted_until FROM mutes WHERE muter_agent_id = $1',
        [muterId],
      )
      return new Map(rows.map((r) => [`${r.target_kind}:${r.target_id}`, r.muted_until ? new Date(r.muted_until).getTime() : null]))
    })
    bus.subscribe((e) => {
      if (e.type === 'mutes.invalidate') this.cache.invalidate(e.agentId)
    })
  }

  private active(m: Map<string, number | null>, key: string, now: number): boolean {
    if (!m.has(key)) return false
    const until = m.get(key)
    return until === null || until === undefined || until > now
  }

  /** Has `muterId` muted this sender (everywhere) or this conversation? */
  async mutes(muterId: string, senderId: string, conversationId: string): Promise<boolean> {
    const m = await this.cache.get(muterId)
    if (m.size === 0) return false
    const now = Date.now()
    return this.active(m, `agent:${senderId}`, now) || this.active(m, `conversation:${conversationId}`, now)
  }

  async changed(muterId: string): Promise<void> {
    this.cache.invalidate(muterId)
    await this.bus.publish({ type: 'mutes.invalidate', agentId: muterId })
  }
}
