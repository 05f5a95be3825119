import type { RawSql } from '../db/client.ts'
import { countStored } from '../delivery/cursors.ts'

/** Recipient backlog limits (contract §17): warn from 5,000 stored (undelivered) messages, refuse at 10,000. */
export const BACKLOG = { warnAt: 5_000, capAt: 10_000 } as const

/** Undelivered-message counts per recipient: in memory (one process) or in Redis (shared). */
export interface Backlog {
  /** Reserve one slot for a message about to be written; refused at the cap. `before` is the count before it. */
  reserve(recipientId: string, cap?: number): Promise<{ ok: boolean; before: number }>
  /**
   * `reserve` for many recipients at once (group fan-out): one round trip with Redis. `cap`
   * defaults to the backlog cap; operator announcements pass `Infinity` — they are counted (the
   * count stays exact) but never refused.
   */
  reserveMany(recipientIds: string[], cap?: number): Promise<Map<string, { ok: boolean; before: number }>>
  /** Envelopes that left `stored` (delivered, read, hidden) or were never written. Fire and forget. */
  release(recipientId: string, n?: number): void
  /** Reload this recipient's count from Postgres on next touch (after changes made behind the server's back). */
  forget(recipientId: string): Promise<void>
}

/** The authoritative count: the recipient's stored messages in Postgres (above their delivery cursors). */
export { countStored }

/**
 * Undelivered (`stored`) message counts per recipient, kept in memory: loaded once per recipient
 * from Postgres on first touch, then moved by every transition the server makes — a send reserves
 * a slot before its insert, every stored→delivered/read transition releases one (the UPDATE's
 * RETURNING says how many). No count(*) per send.
 */
export class BacklogCounter implements Backlog {
  private readonly counts = new Map<string, number>()
  private readonly loading = new Map<string, Promise<number>>()

  constructor(private readonly sql: RawSql) {}

  private async current(recipientId: string): Promise<number> {
    const known = this.counts.get(recipientId)
    if (known !== undefined) return known
    let p = this.loading.get(recipientId)
    if (!p) {
      p = countStored(this.sql, recipientId)
        .then((n) => {
          // Transitions that raced with the load were applied to a missing entry; the count read
          // here already reflects every committed transition, so it wins.
          this.counts.set(recipientId, n)
          this.loading.delete(recipientId)
          return n
        })
      this.loading.set(recipientId, p)
    }
    await p
    return this.counts.get(recipientId)!
  }

  /**
   * Reserve one slot for a message about to be written. Refused at the cap. Returns the count
   * before this message (for X-Backlog-Warning).
   */
  async reserve(recipientId: string, cap: number = BACKLOG.capAt): Promise<{ ok: boolean; before: number }> {
    await this.current(recipientId)
    const n = this.counts.get(recipientId)!
    if (n >= cap) return { ok: false, before: n }
    this.counts.set(recipientId, n + 1)
    return { ok: true, before: n }
  }

  async reserveMany(recipientIds: string[], cap: number = BACKLOG.capAt): Promise<Map<string, { ok: boolean; before: number }>> {
    const out = new Map<string, { ok: boolean; before: number }>()
    for (const id of recipientIds) out.set(id, await this.reserve(id, cap))
    return out
  }

  /** Envelopes left `stored` (delivered, read, hidden) or never written (a failed insert). */
  release(recipientId: string, n = 1): void {
    const c = this.counts.get(recipientId)
    if (c !== undefined) this.counts.set(recipientId, Math.max(0, c - n))
  }

  /** Forget a recipient's count so the next touch reloads it (after bulk changes elsewhere). */
  async forget(recipientId: string): Promise<void> {
    this.counts.delete(recipientId)
  }
}
