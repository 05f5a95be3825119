import type { RawSql } from '../db/client.ts'
import { runIsolated } from '../db/isolate.ts'
import type { Logger } from '../lib/log.ts'
import type { Backlog } from '../limits/backlog.ts'
import { applyAcks, type AckedSeq, type HeldAck } from './cursors.ts'

/**
 * An out-of-order ack waits in memory this long for its gap to close (most close within a flush
 * or two); after that it is recorded as a delivery exception (delivery_acks), so a gap that
 * stays open — a client that dropped one frame — never leaves everything after it `stored`.
 */
const PERSIST_AFTER_MS = 1_000
const MAX_HELD = 100_000

/**
 * Delivery acks (WebSocket `ack` frames, legacy mark-on-write) become cursor moves. Acks are
 * collected for `flushMs` and applied in one statement: one cursor update per (recipient,
 * conversation) per flush, however many messages it covers — no per-message write on the ack
 * path. The first ack after a quiet spell is applied at once, so an idle system answers promptly.
 *
 * A cursor moves only contiguously (delivery/cursors.ts): an ack above a gap is held here until
 * the gap closes (the missing ack arrives, here or through another process's flush). A gap still
 * open after PERSIST_AFTER_MS turns its held acks into delivery exceptions, one row each — the
 * rare, degraded case (a client that dropped a frame: the official SDK drops a re-offered frame
 * whose seq it already passed), so that one missing ack never leaves everything after it stored.
 * A crash loses only held acks: those messages are offered again — at-least-once, nothing lost.
 */
export class AckWriter {
  private queue: { agentId: string; messageId: string }[] = []
  private held = new Map<string, AckedSeq & { at: number }>()
  private flushing: Promise<void> | null = null
  private timer: ReturnType<typeof setTimeout> | null = null
  private lastFlushAt = 0

  constructor(
    private readonly sql: RawSql,
    private readonly backlog: Backlog,
    private readonly log: Logger,
    private readonly flushMs = 500,
  ) {}

  markDelivered(agentId: string, messageId: string): void {
    this.queue.push({ agentId, messageId })
    this.schedule()
  }

  /** Applies everything queued so far (held acks stay held); resolves when it is written. */
  async drain(): Promise<void> {
    this.clearTimer()
    while (this.flushing || this.queue.length > 0) await (this.flushing ?? this.kick())
  }

  /** Held acks waiting for a gap (tests and diagnostics). */
  heldCount(): number {
    return this.held.size
  }

  private clearTimer() {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private schedule(): void {
    if (this.flushing || this.timer) return
    const wait = Math.max(0, this.lastFlushAt + this.flushMs - performance.now())
    if (wait === 0) {
      void this.kick()
      return
    }
    this.timer = setTimeout(() => {
      this.timer = null
      if (!this.flushing) void this.kick()
    }, wait)
    this.timer.unref?.()
  }

  /** Start a flush; `flushing` is set before it can settle (run() may finish synchronously). */
  private kick(): Promise<void> {
    const p = this.run().finally(() => {
      if (this.flushing === p) this.flushing = null
      if (this.queue.length > 0) this.schedule()
    })
    this.flushing = p
    return p
  }

  private async run(): Promise<void> {
    this.lastFlushAt = performance.now()
    const batch = this.queue
    this.queue = []
    const now = Date.now()
    const held: HeldAck[] = [...this.held.values()].map((h) => ({ agentId: h.agentId, conversationId: h.conversationId, seq: h.seq, persist: now - h.at >= PERSIST_AFTER_MS }))
    const since = new Map([...this.held.values()].map((h) => [heldKey(h), h.at]))
    const persisting = new Set(held.filter((h) => h.persist).map(heldKey))
    this.held.clear()
    if (batch.length === 0 && held.length === 0) return
    // One agent's bad ack must not drop everyone else's: a failing flush is split (db/isolate.ts).
    // Any split is safe: each statement reads the cursor it moves under its row lock.
    const parts: Part[] = [...batch.map((a) => ({ ack: a })), ...held.map((h) => ({ held: h }))]
    const outcomes = await runIsolated(parts, async (ps) => {
      const acks = ps.flatMap((p) => ('ack' in p ? [p.ack] : []))
      const r = await applyAcks(this.sql, acks, ps.flatMap((p) => ('held' in p ? [p.held] : [])))
      return ps.map(() => r)
    }, {
      onFailure: (err, n, action) => this.log.warn({ err: (err as Error)?.message, n, action }, 'ack flush failed; unwritten acks are offered again'),
    })
    const seen = new Set<unknown>()
    for (const o of outcomes) {
      if (!o.ok || seen.has(o.value)) continue
      seen.add(o.value)
      for (const m of o.value.moved) if (m.released > 0) this.backlog.release(m.agentId, m.released)
      for (const p of o.value.persisted) if (p.released > 0) this.backlog.release(p.agentId, p.released)
      // Still above the cursor: the gap below it is open; keep it for the next flush (unless it
      // was recorded durably this time).
      for (const a of o.value.above) if (!persisting.has(heldKey(a))) this.hold(a, since.get(heldKey(a)) ?? now)
    }
    // Gaps may close through another process's flush: look again while anything is held.
    if (this.held.size > 0) this.queueRecheck()
  }

  private hold(a: AckedSeq, since: number) {
    if (this.held.size >= MAX_HELD) return
    this.held.set(heldKey(a), { ...a, at: since })
  }

  private queueRecheck() {
    if (this.timer) return
    this.timer = setTimeout(() => {
      this.timer = null
      if (!this.flushing) void this.kick()
    }, Math.max(this.flushMs, 1000))
    this.timer.unref?.()
  }
}

type Part = { ack: { agentId: string; messageId: string } } | { held: HeldAck }

const heldKey = (a: AckedSeq) => `${a.agentId}\u0000${a.conversationId}\u0000${a.seq}`
