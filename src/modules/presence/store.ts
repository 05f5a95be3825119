import type { RedisClient as Redis } from '../../lib/redis.ts'

export interface ExplicitPresence {
  status: 'online' | 'offline' | 'busy'
  customMessage: string | null
  expiresAt: number
}

/**
 * Where presence facts live: in memory for one process, in Redis when several share the network.
 * "Online" means some worker somewhere holds a socket of the agent.
 */
export interface PresenceStore {
  /** This worker now holds a socket of the agent; true when no worker did before. */
  connected(agentId: string): Promise<boolean>
  /** This worker holds no more sockets of the agent; true when no worker does any more. */
  disconnected(agentId: string): Promise<boolean>
  online(agentId: string, localSockets: number): Promise<boolean>
  /** Heartbeat: keep this worker's claim on these agents alive. */
  refresh(agentIds: string[]): Promise<void>
  setExplicit(agentId: string, p: ExplicitPresence | null): Promise<void>
  explicit(agentId: string): Promise<ExplicitPresence | null>
  touch(agentId: string): Promise<void>
  lastSeen(agentId: string): Promise<number | null>
}

export class LocalPresenceStore implements PresenceStore {
  private readonly explicitBy = new Map<string, ExplicitPresence>()
  private readonly seen = new Map<string, number>()
  private readonly count = new Map<string, number>()

  async connected(agentId: string) {
    const n = (this.count.get(agentId) ?? 0) + 1
    this.count.set(agentId, n)
    return n === 1
  }
  async disconnected(agentId: string) {
    this.count.delete(agentId)
    return true
  }
  async online(_agentId: string, localSockets: number) {
    return localSockets > 0
  }
  async refresh() {}
  async setExplicit(agentId: string, p: ExplicitPresence | null) {
    if (p) this.explicitBy.set(agentId, p)
    else this.explicitBy.delete(agentId)
  }
  async explicit(agentId: string) {
    const e = this.explicitBy.get(agentId)
    if (e && e.expiresAt <= Date.now()) {
      this.explicitBy.delete(agentId)
      return null
    }
    return e ?? null
  }
  async touch(agentId: string) {
    this.seen.set(agentId, Date.now())
  }
  async lastSeen(agentId: string) {
    return this.seen.get(agentId) ?? null
  }
}

/** A worker's claim on an agent expires unless its heartbeat refreshes it (a crashed worker's claims fade). */
const CLAIM_TTL_MS = 90_000

/**
 * Presence in Redis: `pr:{id}:on` is a sorted set of workers holding sockets (score = claim
 * expiry), `pr:{id}:x` the explicit status (5-minute TTL), `pr:{id}:seen` the last-seen time.
 */
export class RedisPresenceStore implements PresenceStore {
  constructor(
    private readonly redis: Redis,
    private readonly origin: string,
  ) {}

  private on(id: string) {
    return `pr:{${id}}:on`
  }

  async connected(agentId: string) {
    const now = Date.now()
    const [, , [, live]] = (await this.redis
      .multi()
      .zremrangebyscore(this.on(agentId), '-inf', now)
      .zadd(this.on(agentId), now + CLAIM_TTL_MS, this.origin)
      .zcard(this.on(agentId))
      .pexpire(this.on(agentId), CLAIM_TTL_MS)
      .exec()) as [unknown, unknown, [unknown, number], unknown]
    return live === 1
  }

  async disconnected(agentId: string) {
    const now = Date.now()
    const [, , [, live]] = (await this.redis
      .multi()
      .zrem(this.on(agentId), this.origin)
      .zremrangebyscore(this.on(agentId), '-inf', now)
      .zcard(this.on(agentId))
      .exec()) as [unknown, unknown, [unknown, number]]
    return live === 0
  }

  async online(agentId: string, localSockets: number) {
    if (localSockets > 0) return true
    return (await this.redis.zcount(this.on(agentId), Date.now(), '+inf')) > 0
  }

  async refresh(agentIds: string[]) {
    if (agentIds.length === 0) return
    // One small MULTI per agent (one key each: the agents' slots differ on a cluster), sent at once.
    const until = Date.now() + CLAIM_TTL_MS
    await Promise.all(agentIds.map((id) => this.redis.multi().zadd(this.on(id), until, this.origin).pexpire(this.on(id), CLAIM_TTL_MS).exec()))
  }

  async setExplicit(agentId: string, p: ExplicitPresence | null) {
    if (!p) await this.redis.del(`pr:{${agentId}}:x`)
    else await this.redis.set(`pr:{${agentId}}:x`, JSON.stringify(p), 'PX', Math.max(1, p.expiresAt - Date.now()))
  }

  async explicit(agentId: string) {
    const raw = await this.redis.get(`pr:{${agentId}}:x`)
    return raw ? (JSON.parse(raw) as ExplicitPresence) : null
  }

  async touch(agentId: string) {
    await this.redis.set(`pr:{${agentId}}:seen`, Date.now(), 'PX', 30 * 86_400_000)
  }

  async lastSeen(agentId: string) {
    const v = await this.redis.get(`pr:{${agentId}}:seen`)
    return v ? Number(v) : null
  }
}
