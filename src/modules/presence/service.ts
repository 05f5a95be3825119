import type { RawSql } from '../../db/client.ts'
import { enqueue } from '../../delivery/webhooks/outbox.ts'
import type { Logger } from '../../lib/log.ts'
import type { Relations } from '../contacts/relations.ts'
import type { Push } from '../../realtime/push.ts'
import type { SocketRegistry } from '../../realtime/registry.ts'
import type { PresenceStore } from './store.ts'

/** Presence rules (contract §9, §17). */
export const PRESENCE = { ttlMs: 300_000, maxCustomMessage: 200 } as const
export type PresenceStatus = 'online' | 'offline' | 'busy'

export interface PresenceView {
  handle: string
  status: PresenceStatus
  custom_message: string | null
  last_seen: string | null
}

/**
 * Presence from open sockets: online while any worker holds an authenticated socket of the agent,
 * with an explicit status (`PUT /v1/presence` or the WS frame) lasting 5 minutes. Changes go to
 * the agents that have the subject in their contact book as `presence.update`. Presence is
 * advisory: if its store (Redis) is unreachable the socket still works and presence reads fall
 * back to this worker's view.
 */
export class Presence {
  constructor(
    private readonly registry: SocketRegistry,
    private readonly relations: Relations,
    private readonly push: Push,
    private readonly store: PresenceStore,
    private readonly log: Logger,
    private readonly sql?: RawSql,
  ) {}

  async view(agentId: string, handle: string): Promise<PresenceView> {
    const local = this.registry.count(agentId)
    try {
      const [e, online, seen] = await Promise.all([this.store.explicit(agentId), this.store.online(agentId, local), this.store.lastSeen(agentId)])
      const status: PresenceStatus = e ? e.status : online ? 'online' : 'offline'
      const lastSeen = online ? Date.now() : seen
      return { handle, status, custom_message: e?.customMessage ?? null, last_seen: lastSeen ? new Date(lastSeen).toISOString() : null }
    } catch {
      return { handle, status: local > 0 ? 'online' : 'offline', custom_message: null, last_seen: local > 0 ? new Date().toISOString() : null }
    }
  }

  /** A socket of the agent authenticated on this worker (`first`: its first one here). */
  async connected(agentId: string, handle: string, first: boolean): Promise<void> {
    await this.guard(async () => {
      await this.store.touch(agentId)
      if (first && (await this.store.connected(agentId))) await this.broadcast(agentId, handle)
    })
  }

  /** A socket closed (`last`: no more here); the last one anywhere takes the agent offline. */
  async disconnected(agentId: string, handle: string, last: boolean): Promise<void> {
    await this.guard(async () => {
      await this.store.touch(agentId)
      if (!last || !(await this.store.disconnected(agentId))) return
      const e = await this.store.explicit(agentId)
      // An explicit "online" does not outlive the sockets; busy/offline keep their TTL.
      if (e?.status === 'online') await this.store.setExplicit(agentId, null)
      await this.broadcast(agentId, handle)
    })
  }

  /** Heartbeat pong: refresh last_seen. */
  touch(agentId: string): void {
    void this.store.touch(agentId).catch(() => {})
  }

  /** Keep this worker's claims alive (called from the heartbeat). */
  refresh(): void {
    const ids = [...new Set([...this.registry.all()].map((ws) => ws.data.agentId!))]
    void this.store.refresh(ids).catch(() => {})
  }

  async set(agentId: string, handle: string, status: PresenceStatus, customMessage: string | null): Promise<PresenceView> {
    await this.store.setExplicit(agentId, { status, customMessage, expiresAt: Date.now() + PRESENCE.ttlMs })
    await this.store.touch(agentId)
    await this.broadcast(agentId, handle)
    return this.view(agentId, handle)
  }

  async broadcast(agentId: string, handle: string): Promise<void> {
    const watchers = await this.relations.watchersOf(agentId)
    if (watchers.length === 0) return
    const v = await this.view(agentId, handle)
    const payload = { handle, status: v.status, custom_message: v.custom_message }
    this.push.toAgents(watchers, JSON.stringify({ type: 'presence.update', payload }))
    // presence.update webhooks of the same watchers. Presence itself is not stored in Postgres, so
    // the outbox row is the only write; a failure here never fails the presence change.
    if (this.sql) {
      await enqueue(this.sql, 'presence.update', `${agentId}:${Date.now()}:${v.status}:${v.custom_message ?? ''}`, payload, { agents: watchers }).catch((err) =>
        this.log.warn({ err: String(err) }, 'presence.update webhook enqueue failed'),
      )
    }
  }

  private readonly pending = new Set<Promise<void>>()

  /** Resolves when every connect/disconnect update started so far has finished (shutdown). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending])
  }

  private async guard(fn: () => Promise<void>) {
    const p = fn().catch((err) => {
      this.log.warn({ err: (err as Error).message }, 'presence store unavailable')
    })
    this.pending.add(p)
    await p
    this.pending.delete(p)
  }
}
