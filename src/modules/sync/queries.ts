import type { AppContext } from '../../context.ts'
import { ackThroughPosition, inbox } from '../../delivery/cursors.ts'
import { deliveryIdFromPosition } from '../../lib/ids.ts'
import { publicMessage, rowToMessage } from '../messages/shape.ts'

/**
 * The caller's stored messages after a position, oldest first, as sync rows: the public message
 * plus its delivery fields (`delivery_id` encodes the message's position, `status: "stored"`).
 * Shared by `GET /v1/messages/sync` and the WebSocket backlog drain. Acks not yet applied are
 * applied first, so a reconnect does not get back what was just acknowledged.
 */
export async function storedRows(ctx: AppContext, recipientId: string, afterPosition: bigint, limit: number) {
  await ctx.acks.drain()
  const rows = await inbox(ctx.database.raw, recipientId, afterPosition, limit)
  const out = []
  for (const r of rows) {
    const m = rowToMessage(r)
    const pub = await publicMessage(ctx.agents, m, await ctx.conversations.facts(m.conversationId))
    out.push({ ...pub, delivery_id: deliveryIdFromPosition(BigInt(r.pos)), status: 'stored' as const, delivered_at: null, read_at: null, position: BigInt(r.pos) })
  }
  return out
}

/** Every stored message of the caller at or before `position` becomes delivered; returns how many. */
export async function ackThrough(ctx: AppContext, recipientId: string, position: bigint): Promise<number> {
  await ctx.acks.drain()
  let n = 0
  for (const m of await ackThroughPosition(ctx.database.raw, recipientId, position)) n += m.released
  if (n > 0) ctx.backlog.release(recipientId, n)
  return n
}
