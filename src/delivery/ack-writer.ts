import type { RawSql } from '../db/client.ts'
import type { Logger } from '../lib/log.ts'
import type { BacklogCounter } from '../limits/backlog.ts'

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
    private readonly backlog: BacklogCounter,
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
          `UPDATE envelopes e SET status = 1, delivered_at = now()
           FROM unnest($1::text[], $2::text[]) AS v(r, m)
           WHERE e.message_id = v.m AND e.recipient_id = v.r AND e.status = 0
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
