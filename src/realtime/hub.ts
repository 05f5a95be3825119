import type { Bus } from '../bus/bus.ts'
import { CLOSE } from './close-codes.ts'
import { startHeartbeat } from './heartbeat.ts'
import { SocketRegistry } from './registry.ts'

/** This worker's WebSocket side: the socket registry, the heartbeat and bus-driven closes. */
export class Realtime {
  readonly registry: SocketRegistry
  private readonly stopHeartbeat: () => void

  constructor(bus: Bus, heartbeatMs: number, pongTimeoutMs: number) {
    this.registry = new SocketRegistry({ join: (vs) => bus.joinShard(vs), leave: (vs) => bus.leaveShard(vs) })
    this.stopHeartbeat = startHeartbeat(this.registry, heartbeatMs, pongTimeoutMs)
    bus.subscribe((e) => {
      if (e.type !== 'agent.close_sockets') return
      for (const ws of [...(this.registry.socketsOf(e.agentId) ?? [])]) {
        if (ws.data.closed) continue
        ws.data.closed = true
        ws.close(e.code, e.reason)
      }
    })
  }

  /** Graceful shutdown: every socket gets 1001 "Server shutting down" (clients reconnect elsewhere). */
  shutdown(): void {
    this.stopHeartbeat()
    for (const ws of [...this.registry.all()]) {
      if (ws.data.closed) continue
      ws.data.closed = true
      ws.close(CLOSE.shuttingDown.code, CLOSE.shuttingDown.reason)
    }
  }
}
