import type { Bus, Delivery } from '../bus/bus.ts'
import type { AckWriter } from '../delivery/ack-writer.ts'
import type { AgentStore } from '../modules/agents/store.ts'
import type { Metrics } from '../metrics/metrics.ts'
import { vshardOf } from '../shard/vshard.ts'
import { CLOSE } from './close-codes.ts'
import type { LongPolls } from './longpoll.ts'
import type { AgentSocket, SocketRegistry } from './registry.ts'

/** Above this many bytes queued on a socket, close it 1013 (contract §12.2): the client reconnects and drains. */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024

/**
 * Write a frame to one socket. True when the frame was written or queued; false when the socket
 * dropped it or was closed for overload.
 */
export function sendFrame(ws: AgentSocket, frame: string): boolean {
  if (ws.data.closed || ws.data.pending) return false
  const r = ws.send(frame)
  if (ws.getBufferedAmount() > MAX_BUFFERED_BYTES) {
    ws.data.closed = true
    ws.close(CLOSE.overload.code, CLOSE.overload.reason)
    return false
  }
  return r !== 0
}

/**
 * Pushes frames to agents' sockets, wherever they are connected: sockets of this worker directly,
 * and — when the bus reaches other workers and processes — once per recipient virtual shard on
 * the bus, where only workers holding sockets in that shard listen. The frame is serialised once
 * by the caller and written as the same string to every socket.
 */
export class Push {
  constructor(
    private readonly registry: SocketRegistry,
    private readonly bus: Bus,
    private readonly acks: AckWriter,
    private readonly agents: AgentStore,
    private readonly origin: string,
    private readonly metrics: Pick<Metrics, 'delivered'>,
    /** Long-polls of this worker: a `message.new` wakes the recipients' polls here. */
    private readonly longPolls?: LongPolls,
  ) {
    bus.onDelivery((d) => {
      if (d.origin !== this.origin && d.recipients.length > 0) this.local(d.recipients, d.frame, d.messageId)
    })
  }

  toAgents(recipients: string[], frame: string, messageId?: string): void {
    this.local(recipients, frame, messageId)
    if (messageId) this.longPolls?.wake(recipients)
    if (this.bus.remote) void this.remote(recipients, (ids) => ({ origin: this.origin, recipients: ids, frame, messageId }))
  }

  /**
   * Something was stored for these agents that gets no live frame (they muted the sender or the
   * conversation, or are fully paused): no socket is written, but their long-polls anywhere look
   * again — what sync would return, a long-poll returns. One frameless delivery per virtual shard.
   */
  wake(agentIds: string[]): void {
    if (agentIds.length === 0) return
    this.longPolls?.wake(agentIds)
    if (this.bus.remote) void this.remote(agentIds, (ids) => ({ origin: this.origin, recipients: [], frame: '', wake: ids }))
  }

  private async remote(recipients: string[], build: (ids: string[]) => Delivery): Promise<void> {
    const byShard = new Map<number, string[]>()
    for (const id of recipients) {
      const a = await this.agents.get(id)
      if (!a) continue
      const vs = vshardOf(a.handle)
      const list = byShard.get(vs)
      if (list) list.push(id)
      else byShard.set(vs, [id])
    }
    for (const [vs, ids] of byShard) {
      const d = build(ids)
      // A delivery lost to a Redis outage is not lost: the envelope stays stored and every
      // socket is drained again when the bus reconnects.
      await this.bus.deliver(vs, d).catch(() => {})
    }
  }

  /** Sockets of this worker only. Legacy (non-ack) sockets mark `message.new` delivered on write. */
  local(recipients: string[], frame: string, messageId?: string): void {
    for (const r of recipients) {
      const sockets = this.registry.socketsOf(r)
      if (!sockets) continue
      let legacyWritten = false
      let written = 0
      for (const ws of sockets) {
        if (!sendFrame(ws, frame)) continue
        written++
        if (!ws.data.ackMode) legacyWritten = true
      }
      // Only message.new frames carry a message id; presence, typing and receipts are not deliveries.
      if (messageId) this.metrics.delivered('socket', written)
      if (messageId && legacyWritten) this.acks.markDelivered(r, messageId)
    }
  }
}
