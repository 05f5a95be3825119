import type { Bus } from '../bus/bus.ts'
import type { AckWriter } from '../delivery/ack-writer.ts'
import { CLOSE } from './close-codes.ts'
import type { AgentSocket, SocketRegistry } from './registry.ts'

/** Above this many bytes queued on a socket, close it 1013 (contract §12.2): the client reconnects and drains. */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024

/**
 * Write a frame to one socket. True when the frame was written or queued; false when the socket
 * dropped it or was closed for overload.
 */
export function sendFrame(ws: AgentSocket, frame: string): boolean {
  if (ws.data.closed) return false
  const r = ws.send(frame)
  if (ws.getBufferedAmount() > MAX_BUFFERED_BYTES) {
    ws.data.closed = true
    ws.close(CLOSE.overload.code, CLOSE.overload.reason)
    return false
  }
  return r !== 0
}

/**
 * Pushes frames to agents' sockets: local sockets directly, and — when the bus reaches other
 * processes — once through the bus for sockets elsewhere. A frame is serialised once by the
 * caller and written as the same string to every socket.
 */
export class Push {
  constructor(
    private readonly registry: SocketRegistry,
    private readonly bus: Bus,
    private readonly acks: AckWriter,
    private readonly origin: string,
  ) {
    bus.subscribe((e) => {
      if (e.type === 'deliver' && e.origin !== this.origin) this.local(e.recipients, e.frame, e.messageId)
    })
  }

  toAgents(recipients: string[], frame: string, messageId?: string): void {
    this.local(recipients, frame, messageId)
    if (this.bus.remote) void this.bus.publish({ type: 'deliver', origin: this.origin, recipients, frame, messageId }).catch(() => {})
  }

  /** Sockets of this process only. Legacy (non-ack) sockets mark `message.new` delivered on write. */
  local(recipients: string[], frame: string, messageId?: string): void {
    for (const r of recipients) {
      const sockets = this.registry.socketsOf(r)
      if (!sockets) continue
      let legacyWritten = false
      for (const ws of sockets) {
        if (sendFrame(ws, frame) && !ws.data.ackMode) legacyWritten = true
      }
      if (messageId && legacyWritten) this.acks.markDelivered(r, messageId)
    }
  }
}
