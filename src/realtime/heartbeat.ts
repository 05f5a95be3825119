import { CLOSE } from './close-codes.ts'
import type { AgentSocket } from './registry.ts'

/**
 * Protocol-level ping every `intervalMs` (30 s); a socket that has not answered within
 * `timeoutMs` (10 s) is closed 1001 "Heartbeat timeout" so the client reconnects.
 */
export function startHeartbeat(registry: { all(): Iterable<AgentSocket> }, intervalMs: number, timeoutMs: number): () => void {
  let check: ReturnType<typeof setTimeout> | undefined
  const tick = setInterval(() => {
    const pingAt = Date.now()
    for (const ws of registry.all()) {
      if (ws.data.closed) continue
      ws.data.pingAt = pingAt
      ws.ping()
    }
    check = setTimeout(() => {
      for (const ws of registry.all()) {
        if (!ws.data.closed && ws.data.pingAt === pingAt && ws.data.pongAt < pingAt) {
          ws.data.closed = true
          ws.close(CLOSE.heartbeatTimeout.code, CLOSE.heartbeatTimeout.reason)
        }
      }
    }, timeoutMs)
  }, intervalMs)
  return () => {
    clearInterval(tick)
    if (check) clearTimeout(check)
  }
}
