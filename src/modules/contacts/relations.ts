import type { Bus } from '../../bus/bus.ts'
import type { RawSql } from '../../db/client.ts'
import { LazyCache } from '../../lib/lazy-cache.ts'

/**
 * Who blocked whom and whose contact book holds whom, cached per agent for the send and presence
 * paths. Every change publishes `relations.invalidate` so every worker drops the affected sets.
 */
export class Relations {
  private readonly blocked: LazyCache<string, Set<string>>
  private readonly contacts: LazyCache<string, Set<string>>
  /** Agents that have this agent in their contact book (presence audience). */
  private readonly watchers: LazyCache<string, string[]>

  constructor(
    sql: RawSql,
    private readonly bus: Bus,
  ) {
    this.blocked = new LazyCache(async (id) => {
      const rows = await sql.query<{ id: string }>('SELECT blocked_id AS id FROM blocks WHERE blocker_id = $1', [id])
      return new Set(rows.map((r) => r.id))
    })
    this.contacts = new LazyCache(async (id) => {
      const rows = await sql.query<{ id: string }>('SELECT contact_id AS id FROM contacts WHERE owner_id = $1', [id])
      return new Set(rows.map((r) => r.id))
    })
    this.watchers = new LazyCache(async (id) => {
      const rows = await sql.query<{ id: string }>(
        `SELECT c.owner_id AS id FROM contacts c JOIN agents a ON a.id = c.owner_id
         WHERE c.contact_id = $1 AND a.status IN ('active', 'restricted')`,
        [id],
      )
      return rows.map((r) => r.id)
    })
    bus.subscribe((e) => {
      if (e.type === 'relations.invalidate') for (const id of e.agentIds) this.forget(id)
    })
  }

  async blockedEitherWay(a: string, b: string): Promise<boolean> {
    const [ab, ba] = await Promise.all([this.blocked.get(a), this.blocked.get(b)])
    return ab.has(b) || ba.has(a)
  }

  async hasContact(ownerId: string, contactId: string): Promise<boolean> {
    return (await this.contacts.get(ownerId)).has(contactId)
  }

  watchersOf(agentId: string): Promise<string[]> {
    return this.watchers.get(agentId)
  }

  /** Call after any contact or block change involving these agents. */
  async changed(...agentIds: string[]): Promise<void> {
    for (const id of agentIds) this.forget(id)
    await this.bus.publish({ type: 'relations.invalidate', agentIds })
  }

  private forget(id: string) {
    this.blocked.invalidate(id)
    this.contacts.invalidate(id)
    this.watchers.invalidate(id)
  }
}
