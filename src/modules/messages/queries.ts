import { enqueue } from '../../delivery/webhooks/outbox.ts'
import type { AppContext } from '../../context.ts'
import { deliveryIdFromPosition } from '../../lib/ids.ts'
import { CURSOR_SQL, isStored, readOne, readThrough } from '../../delivery/cursors.ts'
import { counterpartOf, type Membership } from '../conversations/membership.ts'
import { MESSAGE_COLUMNS, publicMessage, rowToMessage, STATUS_NAMES, type MessageRow } from './shape.ts'

export type Cursor = { kind: 'none' } | { kind: 'before'; seq: number } | { kind: 'after'; seq: number } | { kind: 'around'; seq: number }

interface HistoryRow extends MessageRow {
  position: string
  status: number
  delivered_at: Date | string | null
  read_at: Date | string | null
  own_group: boolean
  skipped: boolean
  expired: boolean
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())
const { DELIVERED, READ } = CURSOR_SQL
/** Past its expiry; never NULL (a NULL under NOT would drop every message without a TTL). */
const PAST = '(m.expires_at IS NOT NULL AND m.expires_at <= now())'
/** History's row for member `mm`: neither read nor delivered, by cursor or on its own. */
const STILL_STORED = `(r.seq IS NULL AND d.seq IS NULL AND m.seq > ${READ} AND m.seq > ${DELIVERED})`

/**
 * One page of history for the caller, filtered by their join point, conversation hide and
 * per-message hides. Status comes from the recipient's cursors in a direct conversation (so a
 * sender sees delivered/read) and from the caller's own in a group (own messages: `stored`, no
 * delivery id). `delivered_at`/`read_at` are when that cursor last moved past the message
 * (acks are applied in batches; per-message instants are not stored), or the instant a message
 * was read on its own.
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
  // mm: the member whose delivery state the caller sees for each row (the recipient of a direct
  // message, the caller in a group).
  const rows = await ctx.database.raw.query<HistoryRow>(
    `SELECT ${MESSAGE_COLUMNS}, m.position::text AS position,
       (left(m.conversation_id, 4) = 'grp_' AND m.sender_id = $2) AS own_group,
       s.seq IS NOT NULL AS skipped,
       -- Expiry (issue 16.3), as the sender sees it: a direct message that expired before the
       -- recipient got it (recorded, or past the instant and still stored), a group message the
       -- sweeper found had not reached someone.
       (m.sender_id = $2 AND CASE WHEN left(m.conversation_id, 4) = 'grp_' THEN m.expired_at IS NOT NULL
          ELSE COALESCE(s.expired, false) OR (s.seq IS NULL AND ${STILL_STORED} AND ${PAST}) END) AS expired,
       CASE WHEN r.seq IS NOT NULL OR m.seq <= ${READ} THEN 2 WHEN m.seq <= ${DELIVERED} OR d.seq IS NOT NULL THEN 1 ELSE 0 END AS status,
       CASE WHEN m.seq <= ${DELIVERED} THEN mm.delivered_at ELSE COALESCE(d.delivered_at, r.read_at) END AS delivered_at,
       CASE WHEN r.seq IS NOT NULL THEN r.read_at WHEN m.seq <= ${READ} THEN mm.read_at END AS read_at
     FROM messages m
     JOIN conversation_members mm ON mm.conversation_id = m.conversation_id AND mm.agent_id = (CASE WHEN m.sender_id = $2 THEN $3 ELSE $2 END)
     LEFT JOIN message_reads r ON r.agent_id = mm.agent_id AND r.conversation_id = m.conversation_id AND r.seq = m.seq
     LEFT JOIN delivery_acks d ON d.agent_id = mm.agent_id AND d.conversation_id = m.conversation_id AND d.seq = m.seq
     LEFT JOIN delivery_skips s ON s.agent_id = mm.agent_id AND s.conversation_id = m.conversation_id AND s.seq = m.seq
     WHERE m.conversation_id = $1 AND m.seq >= $4 AND m.seq > $5
       AND NOT EXISTS (SELECT 1 FROM message_hides h WHERE h.agent_id = $2 AND h.message_id = m.id)
       -- A message that expired before reaching the caller is never delivered, history included.
       AND NOT (m.sender_id <> $2 AND ${PAST} AND (s.seq IS NOT NULL OR ${STILL_STORED}))
       ${where}
     ORDER BY m.seq ${order} LIMIT $6`,
    params,
  )
  const facts = await ctx.conversations.facts(mem.conversationId)
  return Promise.all(
    rows.map(async (r) => {
      const plain = r.own_group || r.skipped
      const pub = await publicMessage(ctx.agents, rowToMessage(r), facts)
      if (r.expired) return { ...pub, delivery_id: null, status: 'expired', delivered_at: null, read_at: null }
      return {
        // What others sent carries its provenance for the reader; the reader's own messages do not.
        ...(r.sender_id === me ? pub : await ctx.provenance.deliver(pub, me)),
        delivery_id: plain ? null : deliveryIdFromPosition(BigInt(r.position)),
        status: plain ? 'stored' : (STATUS_NAMES[Number(r.status)] ?? 'stored'),
        delivered_at: plain ? null : iso(r.delivered_at),
        read_at: plain ? null : iso(r.read_at),
      }
    }),
  )
}

export async function messageById(ctx: Pick<AppContext, 'database'>, id: string) {
  const rows = await ctx.database.raw.query<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1`, [id])
  return rows[0] ? rowToMessage(rows[0]) : null
}

/**
 * Mark one message the caller received read (forward only, that message alone). Null when it
 * is not addressed to the caller; `was` says whether it was still stored (0) or unread (1).
 */
export async function markRead(ctx: AppContext, messageId: string, recipientId: string, readerHandle: string) {
  // The read and its message.read webhook for the sender commit together.
  const r = await ctx.database.transaction(async (q) => {
    const r = await readOne(q, recipientId, messageId)
    if (r && r.was < 2) {
      const data = { message_id: messageId, read_by: readerHandle, read_at: r.readAt.toISOString() }
      await enqueue(q, 'message.read', `${messageId}:${recipientId}`, data, { agents: [r.senderId] })
    }
    return r
  })
  if (r && r.was === 0) ctx.backlog.release(recipientId)
  return r
}

/** Mark the caller's messages in a conversation read through a seq (WS `message.read_ack`); returns the senders affected. */
export async function markReadThrough(ctx: AppContext, conversationId: string, recipientId: string, readerHandle: string, throughSeq: number): Promise<string[]> {
  await ctx.acks.drain()
  const r = await ctx.database.transaction(async (q) => {
    const r = await readThrough(q, recipientId, conversationId, throughSeq)
    if (r.senders.length > 0) {
      const [m] = await q.query<{ id: string }>(`SELECT id FROM messages WHERE conversation_id = $1 AND seq = $2`, [conversationId, throughSeq])
      const data = { message_id: m?.id ?? null, conversation_id: conversationId, through_seq: throughSeq, read_by: readerHandle, read_at: new Date().toISOString() }
      await enqueue(q, 'message.read', `${conversationId}:${recipientId}:${throughSeq}`, data, { agents: r.senders })
    }
    return r
  })
  if (r.released > 0) ctx.backlog.release(recipientId, r.released)
  return r.senders
}

/** Hide-for-me: record the hide; a message still stored for the caller stops counting (and syncing). */
export async function hideMessage(ctx: AppContext, messageId: string, conversationId: string, agentId: string) {
  const stored = await isStored(ctx.database.raw, agentId, messageId)
  const added = await ctx.database.raw.query(
    `INSERT INTO message_hides (agent_id, message_id, conversation_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1`,
    [agentId, messageId, conversationId],
  )
  if (stored && added.length > 0) ctx.backlog.release(agentId)
}
