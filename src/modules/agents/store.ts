import { eq } from 'drizzle-orm'
import type { Bus } from '../../bus/bus.ts'
import type { Db } from '../../db/client.ts'
import { agents } from '../../db/schema.ts'
import type { AgentRecord } from './record.ts'

const TTL_MS = 60_000

interface Entry {
  agent: AgentRecord
  at: number
}

/**
 * Agent rows by key hash, id and handle, cached in memory. Every change to an agent publishes
 * `agent.invalidate` on the bus, which drops the cached copies in every worker and process; the
 * TTL only bounds staleness if an invalidation is ever missed.
 */
export class AgentStore {
  private readonly byHash = new Map<string, Entry>()
  private readonly byId = new Map<string, Entry>()
  private readonly byHandle = new Map<string, Entry>()
  private readonly aliases = new Map<string, { hashes: Set<string>; handles: Set<string> }>()

  constructor(
    private readonly db: Db,
    private readonly bus: Bus,
  ) {
    bus.subscribe((e) => {
      // `agent.redrain` (a full pause ended) also means the row changed: on a Redis Cluster the
      // broadcast events of one change can arrive out of order, and the redrain must not act on
      // the cached, still-paused copy. (This handler is registered before the ones that redrain.)
      if (e.type === 'agent.invalidate' || e.type === 'agent.redrain') this.forget(e.agentId)
    })
  }

  byKeyHash(hash: string) {
    return this.cached(this.byHash, hash, () => this.db.select().from(agents).where(eq(agents.apiKeyHash, hash)))
  }

  get(id: string) {
    return this.cached(this.byId, id, () => this.db.select().from(agents).where(eq(agents.id, id)))
  }

  getByHandle(handle: string) {
    return this.cached(this.byHandle, handle, () => this.db.select().from(agents).where(eq(agents.handle, handle)))
  }

  /** Drop cached copies here and everywhere else. */
  async changed(agentId: string): Promise<void> {
    this.forget(agentId)
    await this.bus.publish({ type: 'agent.invalidate', agentId })
  }

  private forget(agentId: string) {
    this.byId.delete(agentId)
    // Every key hash and handle this agent was ever cached under, so an old key cannot linger.
    const aliases = this.aliases.get(agentId)
    if (!aliases) return
    this.aliases.delete(agentId)
    for (const h of aliases.hashes) this.byHash.delete(h)
    for (const h of aliases.handles) this.byHandle.delete(h)
  }

  private async cached(map: Map<string, Entry>, key: string, load: () => Promise<AgentRecord[]>) {
    const hit = map.get(key)
    const now = Date.now()
    if (hit && now - hit.at < TTL_MS) return hit.agent
    const [row] = await load()
    // Misses are not cached: a handle or key that appears a moment later must resolve at once.
    if (!row) return null
    const entry = { agent: row, at: now }
    map.set(key, entry)
    {
      this.byId.set(row.id, entry)
      this.byHandle.set(row.handle, entry)
      if (row.apiKeyHash) this.byHash.set(row.apiKeyHash, entry)
      let a = this.aliases.get(row.id)
      if (!a) this.aliases.set(row.id, (a = { hashes: new Set(), handles: new Set() }))
      a.handles.add(row.handle)
      if (row.apiKeyHash) a.hashes.add(row.apiKeyHash)
    }
    return entry.agent
  }
}
