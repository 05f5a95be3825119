import type { Bus } from '../../bus/bus.ts'
import type { RawSql } from '../../db/client.ts'
import { LazyCache } from '../../lib/lazy-cache.ts'

export interface DirectConversation {
  id: string
  agentA: string
  agentB: string
  initiatorId: string
  established: boolean
  createdAt: Date
}

/** Direct conversations are keyed by their ordered pair of agent ids. */
export const pairOf = (x: string, y: string): [string, string] => (x < y ? [x, y] : [y, x])
const keyOf = (x: string, y: string) => pairOf(x, y).join('|')

/**
 * Direct conversations by agent pair, cached for the send path. A cached "none" is safe: the
 * cold-send transaction re-checks the pair under its lock. Establishment is published on the bus.
 */
export class DirectConversations {
  private readonly cache: LazyCache<string, DirectConversation | null>

  constructor(
    private readonly sql: RawSql,
    private readonly bus: Bus,
  ) {
    this.cache = new LazyCache(async (key) => {
      const [a, b] = key.split('|') as [string, string]
      return this.load(this.sql, a, b)
    })
    bus.subscribe((e) => {
      if (e.type === 'conversation.invalidate' && e.agentIds.length === 2) this.cache.invalidate(keyOf(e.agentIds[0]!, e.agentIds[1]!))
    })
  }

  async load(sql: RawSql, a: string, b: string): Promise<DirectConversation | null> {
    const rows = await sql.query<{ id: string; initiator_id: string; established: boolean; created_at: Date | string }>(
      `SELECT id, initiator_id, established, created_at FROM conversations WHERE type = 'direct' AND agent_a = $1 AND agent_b = $2`,
      [a, b],
    )
    const r = rows[0]
    if (!r) return null
    return { id: r.id, agentA: a, agentB: b, initiatorId: r.initiator_id, established: r.established, createdAt: new Date(r.created_at) }
  }

  get(x: string, y: string): Promise<DirectConversation | null> {
    return this.cache.get(keyOf(x, y))
  }

  remember(c: DirectConversation): void {
    this.cache.set(keyOf(c.agentA, c.agentB), c)
  }

  /** After establishment (or any change) of the pair's conversation. */
  async changed(x: string, y: string): Promise<void> {
    this.cache.invalidate(keyOf(x, y))
    await this.bus.publish({ type: 'conversation.invalidate', conversationId: '', agentIds: pairOf(x, y) })
  }
}
