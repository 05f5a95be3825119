import type { RawSql } from '../db/client.ts'
import { runIsolated } from '../db/isolate.ts'
import type { Logger } from '../lib/log.ts'
import type { Backlog } from '../limits/backlog.ts'

/**
 * Moves envelopes from `stored` to `delivered` in batches: WS ack frames, legacy mark-on-write.
 * Many acks arrive per millisecond under load; one UPDATE per flush instead of one per ack.
 * An ack lost in a crash before its flush only means the envelope is offered again
 * (at-least-once), never that a message is lost.
 */
export class AckWriter {
  private queue: { recipientId: string; messageId: string }[] = []
  private flushing: Promise<void> | null = null

  constructor(
    private readonly sql: RawSql,
    private readonly backlog: Backlog,
    private readonly log: Logger,
  ) {}

  markDelivered(recipientId: string, messageId: string): void {
    this.queue.push({ recipientId, messageId })
    if (!this.flushing) this.flushing = this.run()
  }

  /** Resolves when everything queued so far is written. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue
      this.queue = []
      // One agent's bad ack must not drop everyone else's: a failing flush is split (db/isolate.ts).
      const outcomes = await runIsolated(batch, (part) => this.flushAcks(part), {
        onFailure: (err, n, action) => this.log.warn({ err: (err as Error)?.message, n, action }, 'ack flush failed; unwritten envelopes stay stored and will be offered again'),
      })
      for (const o of outcomes) if (o.ok && o.value) this.backlog.release(o.value)
    }
    this.flushing = null
  }

  /** One UPDATE for a batch of acks; per ack, the recipient whose envelope moved (or null). */
  private async flushAcks(batch: { recipientId: string; messageId: string }[]): Promise<(string | null)[]> {
    const rows = await this.sql.query<{ ord: number }>(
      // LATERAL + LIMIT: one unique-index probe per ack, never a scan of envelopes.
      `UPDATE envelopes e SET status = 1, delivered_at = now()
       FROM (SELECT v.ord, x.position FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS v(r, m, ord)
             CROSS JOIN LATERAL (SELECT position FROM envelopes
                                 WHERE message_id = v.m AND recipient_id = v.r AND status = 0 LIMIT 1) x) AS t
       WHERE e.position = t.position AND e.status = 0
       RETURNING t.ord`,
      [batch.map((b) => b.recipientId), batch.map((b) => b.messageId)],
    )
    const moved = new Set(rows.map((r) => Number(r.ord)))
    return batch.map((b, i) => (moved.has(i + 1) ? b.recipientId : null))
  }
}
