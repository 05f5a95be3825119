import type { AppContext } from '../../context.ts'
import { deliveryIdFromPosition } from '../../lib/ids.ts'
import { counterpartOf, type Membership } from '../conversations/membership.ts'
import { MESSAGE_COLUMNS, publicMessage, rowToMessage, STATUS_NAMES, type MessageRow } from './shape.ts'

export type Cursor = { kind: 'none' } | { kind: 'before'; seq: number } | { kind: 'after'; seq: number } | { kind: 'around'; seq: number }

interface HistoryRow extends MessageRow {
  position: string | null
  status: number | null
  delivered_at: Date | string | null
  read_at: Date | string | null
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())

/**
 * One page of history for the caller, filtered by their join point, conversation hide and
 * per-message hides. Status comes from the recipient's envelope in a direct conversation (so a
 * sender sees delivered/read) and from the caller's own envelope in a group.
 */
export async function historyPage(ctx: AppContext, me: string, mem: Membership, cursor: Cursor, limit: number) {
  const other = mem.type === 'direct' ? counterpartOf(mem, me) : me
  const params: unknown[] = [mem.conversationId, me, other, mem.joinedSeq, mem.hiddenSeq ?? 0, limit]
  let where = ''
  let order = 'DESC'
  if (cursor.kind === 'before') {
    where = 'AND m.seq < $7'
    params.push(cursor.seq)
  } else if (cursor.kind === 'after') {
    where = 'AND m.seq > $7'
    order = 'ASC'
    params.push(cursor.seq)
  } else if (cursor.kind === 'around') {
    where = 'AND m.seq <= $7'
    params.push(cursor.seq)
  }
  const rows = await ctx.database.raw.query<HistoryRow>(
    `SELECT ${MESSAGE_COLUMNS}, e.position::text AS position, e.status, e.delivered_at, e.read_at
     FROM messages m
     LEFT JOIN envelopes e ON e.message_id = m.id AND e.recipient_id = (CASE WHEN m.sender_id = $2 THEN $3 ELSE $2 END)
     WHERE m.conversation_id = $1 AND m.seq >= $4 AND m.seq > $5
       AND NOT EXISTS (SELECT 1 FROM message_hides h WHERE h.agent_id = $2 AND h.message_id = m.id)
       ${where}
     ORDER BY m.seq ${order} LIMIT $6`,
    params,
  )
  const facts = await ctx.conversations.facts(mem.conversationId)
  return Promise.all(
    rows.map(async (r) => ({
      ...(await publicMessage(ctx.agents, rowToMessage(r), facts)),
      delivery_id: r.position === null ? null : deliveryIdFromPosition(BigInt(r.position)),
      status: STATUS_NAMES[r.status ?? 0] ?? 'stored',
      delivered_at: iso(r.delivered_at),
      read_at: iso(r.read_at),
    })),
  )
}

export async function messageById(ctx: AppContext, id: string) {
  const rows = await ctx.database.raw.query<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1`, [id])
  return rows[0] ? rowToMessage(rows[0]) : null
}

/**
 * Move the caller's envelope for a message to `read` (forward only). Returns null when the
 * caller has no envelope for it, and whether it was still stored / not yet read.
 */
export async function markRead(ctx: AppContext, messageId: string, recipientId: string) {
  const rows = await ctx.database.raw.query<{ was: number; read_at: Date | string; sender_id: string; conversation_id: string; seq: string | number }>(
    `WITH old AS (
       SELECT position, status FROM envelopes WHERE message_id = $1 AND recipient_id = $2 FOR UPDATE)
     UPDATE envelopes e SET status = 2, read_at = COALESCE(e.read_at, now()), delivered_at = COALESCE(e.delivered_at, now())
     FROM old WHERE e.position = old.position
     RETURNING old.status AS was, e.read_at, e.sender_id, e.conversation_id, e.seq`,
    [messageId, recipientId],
  )
  const r = rows[0]
  if (!r) return null
  if (Number(r.was) === 0) ctx.backlog.release(recipientId)
  return { was: Number(r.was), readAt: new Date(r.read_at), senderId: r.sender_id, conversationId: r.conversation_id, seq: Number(r.seq) }
}

/** Mark the caller's envelopes in a conversation read through a seq (WS `message.read_ack`). */
export async function markReadThrough(ctx: AppContext, conversationId: string, recipientId: string, throughSeq: number) {
  const rows = await ctx.database.raw.query<{ was: number; sender_id: string; message_id: string }>(
    `WITH old AS (
       SELECT position, status FROM envelopes
       WHERE recipient_id = $1 AND conversation_id = $2 AND seq <= $3 AND status < 2 FOR UPDATE)
     UPDATE envelopes e SET status = 2, read_at = now(), delivered_at = COALESCE(e.delivered_at, now())
     FROM old WHERE e.position = old.position
     RETURNING old.status AS was, e.sender_id, e.message_id`,
    [recipientId, conversationId, throughSeq],
  )
  const stored = rows.filter((r) => Number(r.was) === 0).length
  if (stored > 0) ctx.backlog.release(recipientId, stored)
  return rows
}

/** Hide-for-me: record the hide and stop sync from offering the caller's envelope. */
export async function hideMessage(ctx: AppContext, messageId: string, conversationId: string, agentId: string) {
  await ctx.database.raw.query(
    `INSERT INTO message_hides (agent_id, message_id, conversation_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
    [agentId, messageId, conversationId],
  )
  const moved = await ctx.database.raw.query(
    `UPDATE envelopes SET status = 1, delivered_at = now() WHERE message_id = $1 AND recipient_id = $2 AND status = 0 RETURNING 1`,
    [messageId, agentId],
  )
  if (moved.length > 0) ctx.backlog.release(agentId, moved.length)
}
