import type { AppContext } from '../../context.ts'
import { deliveryIdFromPosition } from '../../lib/ids.ts'
import { MESSAGE_COLUMNS, publicMessage, rowToMessage, type MessageRow } from '../messages/shape.ts'

/**
 * The caller's `stored` envelopes after a position, oldest first, as sync rows: the public
 * message plus its envelope (`delivery_id`, `status`, `delivered_at`, `read_at`). Shared by
 * `GET /v1/messages/sync` and the WebSocket backlog drain.
 *
 * Two queries rather than a join: envelopes are keyed by recipient and messages by conversation,
 * and on a distributed Postgres the second is a primary-key lookup on the message shards.
 */
export async function storedRows(ctx: AppContext, recipientId: string, afterPosition: bigint, limit: number) {
  // (The text alias must not be called `position`: ORDER BY would then sort the text.)
  const envs = await ctx.database.raw.query<{ pos: string; message_id: string }>(
    `SELECT position::text AS pos, message_id FROM envelopes
     WHERE recipient_id = $1 AND status = 0 AND position > $2
     ORDER BY envelopes.position LIMIT $3`,
    [recipientId, afterPosition.toString(), limit],
  )
  if (envs.length === 0) return []
  const msgs = await ctx.database.raw.query<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = ANY($1::text[])`, [
    envs.map((e) => e.message_id),
  ])
  const byId = new Map(msgs.map((m) => [m.id, rowToMessage(m)]))
  const rows = []
  for (const e of envs) {
    const m = byId.get(e.message_id)
    if (!m) continue
    const pub = await publicMessage(ctx.agents, m, await ctx.conversations.facts(m.conversationId))
    rows.push({
      ...pub,
      delivery_id: deliveryIdFromPosition(BigInt(e.pos)),
      status: 'stored' as const,
      delivered_at: null,
      read_at: null,
      position: BigInt(e.pos),
    })
  }
  return rows
}

/** Mark every stored envelope of the caller at or before `position` delivered; returns how many moved. */
export async function ackThrough(ctx: AppContext, recipientId: string, position: bigint): Promise<number> {
  const rows = await ctx.database.raw.query<{ n: string | number }>(
    `WITH moved AS (
       UPDATE envelopes SET status = 1, delivered_at = now()
       WHERE recipient_id = $1 AND status = 0 AND position <= $2
       RETURNING 1)
     SELECT count(*) AS n FROM moved`,
    [recipientId, position.toString()],
  )
  const n = Number(rows[0]?.n ?? 0)
  if (n > 0) ctx.backlog.release(recipientId, n)
  return n
}
