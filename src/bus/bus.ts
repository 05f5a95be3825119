/**
 * The event bus: how one worker tells the others (and other processes) that something happened —
 * deliveries, presence, cache invalidations, socket closes. In-process without Redis
 * (`local.ts`); Redis pub/sub with it (`redis.ts`). The domain code publishes the same events
 * either way.
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
  /** A conversation's cached facts (establishment, membership) changed. */
  | { type: 'conversation.invalidate'; conversationId: string; agentIds: string[] }
  /**
   * Push a pre-serialised frame to every socket of each recipient. `messageId` marks a
   * `message.new` frame, so legacy (non-ack) sockets can mark the envelope delivered on write.
   * `origin` lets the publishing process skip its own copy (it delivered locally already).
   */
  | { type: 'deliver'; origin: string; recipients: string[]; frame: string; messageId?: string }
  /** Presence of an agent changed in some process (for shared presence state). */
  | { type: 'presence.changed'; agentId: string }

export type BusHandler = (event: BusEvent) => void

export interface Bus {
  /** True when events reach other processes (Redis); false for the in-process bus. */
  readonly remote: boolean
  publish(event: BusEvent): Promise<void>
  subscribe(handler: BusHandler): void
  /** True when the transport is reachable (always for the local bus). */
  healthy(): Promise<boolean>
  close(): Promise<void>
}
