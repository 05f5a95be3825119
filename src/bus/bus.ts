/**
 * The event bus: how one worker tells the others (and other processes) that something happened.
 * Two kinds of traffic:
 * - broadcast events (cache invalidations, socket closes) reach every worker;
 * - deliveries (frames for agents' sockets) go to one virtual shard's channel, which only the
 *   workers holding sockets of agents in that shard subscribe to.
 * In-process without Redis (`local.ts`); Redis pub/sub with it (`redis.ts`). The domain code
 * publishes the same events either way.
 */
export type BusEvent =
  /** An agent row changed (key rotated, deleted, suspended, settings): drop cached copies. */
  | { type: 'agent.invalidate'; agentId: string }
  /** Close every socket of the agent with this code and reason. */
  | { type: 'agent.close_sockets'; agentId: string; code: number; reason: string }
  /** Contacts or blocks of these agents changed. */
  | { type: 'relations.invalidate'; agentIds: string[] }
  /** Mutes of this agent changed. */
  | { type: 'mutes.invalidate'; agentId: string }
  /** A direct conversation's cached facts (establishment) changed. */
  | { type: 'conversation.invalidate'; conversationId: string; agentIds: string[] }
  /** The agent left a full pause: drain its open sockets of what was held back. */
  | { type: 'agent.redrain'; agentId: string }
  /** The owner signed out everywhere: close their dashboard sockets (1008 "Signed out"). */
  | { type: 'owner.signed_out'; ownerId: string }
  /** The owner's claimed agents changed: their dashboard sockets reload what they watch. */
  | { type: 'owner.claims_changed'; ownerId: string }
  /** Dashboard sockets somewhere watch these agents: report their messages (refreshed while open). */
  | { type: 'dashboard.watch'; agents: { id: string; handle: string }[] }

/** A frame for some agents' sockets. `messageId` marks a `message.new` (legacy sockets mark it delivered). */
export interface Delivery {
  origin: string
  recipients: string[]
  frame: string
  messageId?: string
  /** A dashboard event about this agent (for owners' dashboard sockets), not an agent delivery. */
  dashboardAgent?: string
  /**
   * Agents that have something new to sync but get no frame (they muted the sender or the
   * conversation): wakes their long-polls (`GET /v1/messages/stream`). Such a delivery has no
   * recipients and an empty frame.
   */
  wake?: string[]
}

export type BusHandler = (event: BusEvent) => void

export interface Bus {
  /** True when events reach other workers or processes (Redis); false for the in-process bus. */
  readonly remote: boolean
  publish(event: BusEvent): Promise<void>
  subscribe(handler: BusHandler): void
  /** Send a delivery to the workers holding sockets in this virtual shard. */
  deliver(vshard: number, d: Delivery): Promise<void>
  onDelivery(handler: (d: Delivery) => void): void
  /**
   * Start / stop receiving deliveries for a virtual shard (reference-counted by the caller). The
   * promise resolves once the subscription is in place (deliveries published after that arrive);
   * callers that do not need to know may ignore it. It never rejects.
   */
  joinShard(vshard: number): Promise<void>
  leaveShard(vshard: number): void
  /** Called when the transport comes back after an outage (deliveries may have been missed). */
  onReconnect(handler: () => void): void
  /** True when the transport is reachable (always for the local bus). */
  healthy(): Promise<boolean>
  close(): Promise<void>
}
