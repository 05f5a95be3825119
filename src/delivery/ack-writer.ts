import type { RawSql } from '../db/client.ts'
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
      try {
        const rows = await this.sql.query<{ recipient_id: string }>(
          // LATERAL + LIMIT: one unique-index probe per ack, never a scan of envelopes.
          `UPDATE envelopes e SET status = 1, delivered_at = now()
           FROM (SELECT x.position FROM unnest($1::text[], $2::text[]) AS v(r, m)
                 CROSS JOIN LATERAL (SELECT position FROM envelopes
                                     WHERE message_id = v.m AND recipient_id = v.r AND status = 0 LIMIT 1) x) AS t
           WHERE e.position = t.position AND e.status = 0
           RETURNING e.recipient_id`,
          [batch.map((b) => b.recipientId), batch.map((b) => b.messageId)],
        )
        for (const r of rows) this.backlog.release(r.recipient_id)
      } catch (err) {
        this.log.warn({ err, n: batch.length }, 'ack flush failed; envelopes stay stored and will be offered again')
      }
    }
    this.flushing = null
  }
}
