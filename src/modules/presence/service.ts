import type { AgentStore } from '../agents/store.ts'
import type { Relations } from '../contacts/relations.ts'
import type { Push } from '../../realtime/push.ts'
import type { SocketRegistry } from '../../realtime/registry.ts'

/** Presence rules (contract §9, §17). */
export const PRESENCE = { ttlMs: 300_000, maxCustomMessage: 200 } as const
export type PresenceStatus = 'online' | 'offline' | 'busy'

interface Explicit {
  status: PresenceStatus
  customMessage: string | null
  expiresAt: number
}

export interface PresenceView {
  handle: string
  status: PresenceStatus
  custom_message: string | null
  last_seen: string | null
}

/**
 * Presence from open sockets: online while an agent has at least one authenticated socket, with
 * an explicit status (`PUT /v1/presence` or the WS frame) lasting 5 minutes. Changes go to the
 * agents that have the subject in their contact book as `presence.update`.
 */
export class Presence {
  private readonly explicit = new Map<string, Explicit>()
  private readonly lastSeen = new Map<string, number>()

  constructor(
    private readonly registry: SocketRegistry,
    private readonly relations: Relations,
    private readonly agents: AgentStore,
    private readonly push: Push,
  ) {}

  private explicitOf(agentId: string): Explicit | undefined {
    const e = this.explicit.get(agentId)
    if (e && e.expiresAt <= Date.now()) {
      this.explicit.delete(agentId)
      return undefined
    }
    return e
  }

  view(agentId: string, handle: string): PresenceView {
    const e = this.explicitOf(agentId)
    const online = this.registry.count(agentId) > 0
    const status: PresenceStatus = e ? e.status : online ? 'online' : 'offline'
    const seen = online ? Date.now() : this.lastSeen.get(agentId)
    return { handle, status, custom_message: e?.customMessage ?? null, last_seen: seen ? new Date(seen).toISOString() : null }
  }

  /** First socket of the agent opened. */
  async connected(agentId: string, handle: string, first: boolean): Promise<void> {
    this.lastSeen.set(agentId, Date.now())
    if (first) await this.broadcast(agentId, handle)
  }

  /** A socket closed; the last one takes the agent offline. */
  async disconnected(agentId: string, handle: string, last: boolean): Promise<void> {
    this.lastSeen.set(agentId, Date.now())
    if (last) {
      const e = this.explicitOf(agentId)
      // An explicit "online" does not outlive the sockets; busy/offline keep their TTL.
      if (e?.status === 'online') this.explicit.delete(agentId)
      await this.broadcast(agentId, handle)
    }
  }

  /** Heartbeat pong: refresh last_seen. */
  touch(agentId: string): void {
    this.lastSeen.set(agentId, Date.now())
  }

  async set(agentId: string, handle: string, status: PresenceStatus, customMessage: string | null): Promise<PresenceView> {
    this.explicit.set(agentId, { status, customMessage, expiresAt: Date.now() + PRESENCE.ttlMs })
    this.lastSeen.set(agentId, Date.now())
    await this.broadcast(agentId, handle)
    return this.view(agentId, handle)
  }

  async broadcast(agentId: string, handle: string): Promise<void> {
    const watchers = await this.relations.watchersOf(agentId)
    if (watchers.length === 0) return
    const v = this.view(agentId, handle)
    const frame = JSON.stringify({ type: 'presence.update', payload: { handle, status: v.status, custom_message: v.custom_message } })
    this.push.toAgents(watchers, frame)
  }

  async viewByHandle(handle: string): Promise<PresenceView | null> {
    const a = await this.agents.getByHandle(handle)
    return a ? this.view(a.id, a.handle) : null
  }
}
