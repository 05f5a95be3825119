import type { ServerWebSocket } from 'bun'
import { vshardOf } from '../shard/vshard.ts'

export interface SocketData {
  id: number
  /** Set once authenticated (HELLO frame or Authorization header). */
  agentId?: string
  handle?: string
  /** Delivery-ack capability negotiated for this connection. */
  ackMode: boolean
  /** Header auth: capabilities asked for on the upgrade. */
  headerCapabilities?: string[]
  /** Header auth failed: close with this once open. */
  rejectWith?: { code: number; reason: string }
  helloTimer?: ReturnType<typeof setTimeout>
  /** Heartbeat: time of the last ping sent and the last pong seen. */
  pingAt: number
  pongAt: number
  closed: boolean
  /** Registered but hello.ok not sent yet (its delivery channel is being subscribed): no frame is written. */
  pending?: boolean
  /** Owner dashboard sockets (/v1/ws/dashboard) only: whose, and which agents it watches. */
  dashboard?: { ownerId: string; agents: { id: string; handle: string }[] }
}

export type AgentSocket = ServerWebSocket<SocketData>

/**
 * The authenticated sockets of this worker, by agent. The first socket of an agent here joins
 * the agent's virtual-shard delivery channel; the last one leaves it.
 */
export class SocketRegistry {
  private readonly byAgent = new Map<string, Set<AgentSocket>>()
  /** Per agent held here: settles once its virtual-shard channel is subscribed (bus.joinShard). */
  private readonly joins = new Map<string, Promise<void>>()
  private nextId = 1

  constructor(private readonly shards?: { join(vshard: number): Promise<void>; leave(vshard: number): void }) {}

  newId(): number {
    return this.nextId++
  }

  /** Returns true when this is the agent's first socket here. */
  add(ws: AgentSocket): boolean {
    const id = ws.data.agentId!
    let set = this.byAgent.get(id)
    const first = !set
    if (!set) {
      this.byAgent.set(id, (set = new Set()))
      if (this.shards) this.joins.set(id, this.shards.join(vshardOf(ws.data.handle!)))
    }
    set.add(ws)
    return first
  }

  /** Returns true when this was the agent's last socket here. */
  remove(ws: AgentSocket): boolean {
    const id = ws.data.agentId
    if (!id) return false
    const set = this.byAgent.get(id)
    if (!set || !set.delete(ws)) return false
    if (set.size === 0) {
      this.byAgent.delete(id)
      this.joins.delete(id)
      this.shards?.leave(vshardOf(ws.data.handle!))
      return true
    }
    return false
  }

  /** Settles once deliveries published for this agent from anywhere reach this worker. */
  joined(agentId: string): Promise<void> {
    return this.joins.get(agentId) ?? Promise.resolve()
  }

  socketsOf(agentId: string): ReadonlySet<AgentSocket> | undefined {
    return this.byAgent.get(agentId)
  }

  count(agentId: string): number {
    return this.byAgent.get(agentId)?.size ?? 0
  }

  /** Sockets held here (computed at scrape, not kept on every add and remove). */
  size(): number {
    let n = 0
    for (const set of this.byAgent.values()) n += set.size
    return n
  }

  *all(): Iterable<AgentSocket> {
    for (const set of this.byAgent.values()) yield* set
  }
}
