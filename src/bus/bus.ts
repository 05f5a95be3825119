/**
 * The event bus: how one worker tells the others (and other processes) that something happened —
 * deliveries, presence, cache invalidations, socket closes. In-process without Redis
 * (`local.ts`); Redis pub/sub with it (`redis.ts`). The domain code publishes the same events
 * either way.
 */
export type BusEvent =
  /** An agent row changed (key rotated, deleted, suspended, settings, blocks): drop cached copies. */
  | { type: 'agent.invalidate'; agentId: string }
  /** Close every socket of the agent with this code and reason. */
  | { type: 'agent.close_sockets'; agentId: string; code: number; reason: string }

export type BusHandler = (event: BusEvent) => void

export interface Bus {
  publish(event: BusEvent): Promise<void>
  subscribe(handler: BusHandler): void
  /** True when the transport is reachable (always for the local bus). */
  healthy(): Promise<boolean>
  close(): Promise<void>
}
