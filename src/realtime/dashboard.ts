import type { Bus, Delivery } from '../bus/bus.ts'
import { vshardOf } from '../shard/vshard.ts'
import { CLOSE } from './close-codes.ts'
import { startHeartbeat } from './heartbeat.ts'
import { sendFrame } from './push.ts'
import type { AgentSocket } from './registry.ts'

/** How long a watch announcement lasts; sockets re-announce every third of it. */
export const WATCH_TTL_MS = 90_000

export interface WatchedAgent {
  id: string
  handle: string
}

/** The committed message a dashboard event describes. */
export interface ObservedMessage {
  id: string
  conversationId: string
  seq: number
  senderId: string
  type: string
  content: unknown
  metadata: unknown
  createdAt: Date
}

/**
 * Owners' dashboard sockets (contract §12.7): live `message.new` for messages sent and received
 * by their claimed agents, whichever worker or process handled the send, never suppressed by
 * pause or mute.
 *
 * The send path must not pay for this when nobody watches: every worker keeps the set of agents
 * some dashboard socket watches (announced on the bus, refreshed while the sockets are open, so a
 * lost process's watches expire), and a committed message costs one map lookup per participant.
 * A watched agent's event goes to its virtual-shard delivery channel, which the workers holding
 * dashboard sockets for it have joined — the same routing as agent deliveries.
 */
export class DashboardHub {
  private readonly byOwner = new Map<string, Set<AgentSocket>>()
  private readonly local = new Map<string, { handle: string; sockets: Set<AgentSocket> }>()
  private readonly watched = new Map<string, { handle: string; until: number }>()
  private readonly stopHeartbeat: () => void
  private readonly refresh: ReturnType<typeof setInterval>

  constructor(
    private readonly bus: Bus,
    private readonly origin: string,
    private readonly loadAgents: (ownerId: string) => Promise<WatchedAgent[]>,
    private readonly handleOf: (agentId: string) => Promise<string | undefined>,
    heartbeatMs: number,
    pongTimeoutMs: number,
  ) {
    this.stopHeartbeat = startHeartbeat(this, heartbeatMs, pongTimeoutMs)
    this.refresh = setInterval(() => this.announce([...this.localAgents()]), WATCH_TTL_MS / 3)
    this.refresh.unref?.()
    bus.subscribe((e) => {
      if (e.type === 'dashboard.watch') this.noteWatched(e.agents)
      else if (e.type === 'owner.signed_out') this.closeOwner(e.ownerId, CLOSE.signedOut)
      else if (e.type === 'owner.claims_changed') void this.reload(e.ownerId)
    })
    bus.onDelivery((d: Delivery) => {
      if (d.dashboardAgent && d.origin !== this.origin) this.writeLocal(d.dashboardAgent, d.frame)
    })
  }

  *all(): Iterable<AgentSocket> {
    for (const set of this.byOwner.values()) yield* set
  }

  /** A dashboard socket opened: watch its owner's agents from now on. */
  async add(ws: AgentSocket): Promise<void> {
    const d = ws.data.dashboard!
    let set = this.byOwner.get(d.ownerId)
    if (!set) this.byOwner.set(d.ownerId, (set = new Set()))
    set.add(ws)
    await this.watch(ws, await this.loadAgents(d.ownerId))
  }

  remove(ws: AgentSocket): void {
    const d = ws.data.dashboard
    if (!d) return
    const set = this.byOwner.get(d.ownerId)
    if (!set?.delete(ws)) return
    if (set.size === 0) this.byOwner.delete(d.ownerId)
    this.unwatch(ws)
  }

  /**
   * After a commit: an event for each watched participant (the sender sees `is_own: true`). The
   * frame is built only for watched agents, so unwatched traffic costs a lookup each.
   */
  observe(m: ObservedMessage, participants: Iterable<string>): void {
    if (this.watched.size === 0) return
    const now = Date.now()
    const hits: { id: string; handle: string }[] = []
    for (const agentId of participants) {
      const w = this.watched.get(agentId)
      if (w && w.until >= now) hits.push({ id: agentId, handle: w.handle })
    }
    if (hits.length > 0) void this.emit(m, hits).catch(() => {})
  }

  private async emit(m: ObservedMessage, hits: { id: string; handle: string }[]): Promise<void> {
    // The sender's handle (an extra field beside §12.7's): a group message needs it to be shown.
    const sender = (await this.handleOf(m.senderId)) ?? 'unknown'
    for (const { id: agentId, handle } of hits) {
      const frame = JSON.stringify({
        type: 'message.new',
        agent_handle: handle,
        conversation_id: m.conversationId,
        payload: {
          id: m.id,
          conversation_id: m.conversationId,
          sender,
          is_own: m.senderId === agentId,
          seq: m.seq,
          type: m.type,
          content: m.content,
          metadata: m.metadata,
          created_at: m.createdAt.toISOString(),
          delivery_id: null,
          status: 'stored',
          delivered_at: null,
          read_at: null,
        },
      })
      this.route(agentId, handle, frame)
    }
  }

  /** To the watched agent's dashboard sockets here and, over its virtual-shard channel, elsewhere. */
  private route(agentId: string, handle: string, frame: string): void {
    this.writeLocal(agentId, frame)
    if (this.bus.remote) void this.bus.deliver(vshardOf(handle), { origin: this.origin, recipients: [], frame, dashboardAgent: agentId }).catch(() => {})
  }

  /**
   * A non-message event about watched agents (e.g. `conversation.loop_detected`): one frame per
   * watched agent, `{type, agent_handle, payload}`, routed like the message events.
   */
  notify(agentIds: Iterable<string>, type: string, payload: unknown): void {
    if (this.watched.size === 0) return
    const now = Date.now()
    for (const agentId of agentIds) {
      const w = this.watched.get(agentId)
      if (!w || w.until < now) continue
      this.route(agentId, w.handle, JSON.stringify({ type, agent_handle: w.handle, payload }))
    }
  }

  shutdown(): void {
    this.stopHeartbeat()
    clearInterval(this.refresh)
    for (const ws of [...this.all()]) close(ws, CLOSE.shuttingDown)
  }

  private writeLocal(agentId: string, frame: string): void {
    for (const ws of this.local.get(agentId)?.sockets ?? []) sendFrame(ws, frame)
  }

  private async watch(ws: AgentSocket, agents: WatchedAgent[]): Promise<void> {
    ws.data.dashboard!.agents = agents
    for (const a of agents) {
      let entry = this.local.get(a.id)
      if (!entry) {
        this.local.set(a.id, (entry = { handle: a.handle, sockets: new Set() }))
        this.bus.joinShard(vshardOf(a.handle))
      }
      entry.sockets.add(ws)
    }
    await this.announce(agents)
  }

  private unwatch(ws: AgentSocket): void {
    for (const a of ws.data.dashboard?.agents ?? []) {
      const entry = this.local.get(a.id)
      if (!entry?.sockets.delete(ws)) continue
      if (entry.sockets.size === 0) {
        this.local.delete(a.id)
        this.bus.leaveShard(vshardOf(a.handle))
      }
    }
  }

  /** Claims changed: every socket of the owner here watches the new set. */
  private async reload(ownerId: string): Promise<void> {
    const sockets = this.byOwner.get(ownerId)
    if (!sockets || sockets.size === 0) return
    const agents = await this.loadAgents(ownerId)
    for (const ws of sockets) {
      this.unwatch(ws)
      await this.watch(ws, agents)
    }
  }

  private *localAgents(): Iterable<WatchedAgent> {
    for (const [id, e] of this.local) yield { id, handle: e.handle }
  }

  private async announce(agents: WatchedAgent[]): Promise<void> {
    if (agents.length === 0) return
    this.noteWatched(agents)
    await this.bus.publish({ type: 'dashboard.watch', agents }).catch(() => {})
  }

  private noteWatched(agents: WatchedAgent[]): void {
    const until = Date.now() + WATCH_TTL_MS
    for (const a of agents) this.watched.set(a.id, { handle: a.handle, until })
    // Expired entries are dropped as announcements arrive, so the map stays the size of what is watched.
    if (this.watched.size > 1024) for (const [id, w] of this.watched) if (w.until < Date.now()) this.watched.delete(id)
  }

  private closeOwner(ownerId: string, c: { code: number; reason: string }): void {
    for (const ws of [...(this.byOwner.get(ownerId) ?? [])]) close(ws, c)
  }
}

function close(ws: AgentSocket, c: { code: number; reason: string }): void {
  if (ws.data.closed) return
  ws.data.closed = true
  ws.close(c.code, c.reason)
}
