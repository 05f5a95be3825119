import type { RawSql } from '../db/client.ts'

/*
 * Delivery state as cursors (conversation_members.delivered_seq / read_seq). A message is one
 * row; for each member it is
 *   addressed  — sent by someone else, at or after the member's join point, not a skip exception;
 *   stored     — addressed, above the delivered cursor, not acked or read on its own, not hidden;
 *   delivered  — at or below the delivered cursor, or acked on its own (delivery_acks);
 *   read       — at or below the read cursor, or read on its own (message_reads).
 * The effective cursor is never below the join point: GREATEST(cursor, joined_seq - 1).
 *
 * Every statement that moves cursors of several members locks their rows in one order —
 * (agent_id, conversation_id) — so concurrent movers (acks, sync acks, reads, departures, in any
 * process) may wait on each other but never deadlock; and each reads the cursor it moves from
 * under that lock, so the counts it reports (what left `stored`, for the backlog counters) are
 * exact even when two processes move the same cursor at once.
 *
 * Expiry (issue 16.3, delivery/expiry.ts): a message with `expires_at` that is still stored for a
 * member past that instant is never delivered to it. Reads (inbox: sync, the socket drain,
 * long-poll) leave it out at once. It stays counted as stored (the backlog) until a `delivery_skips`
 * row takes it out — written by the sweeper, or by a cursor statement that moves past it (sync's
 * positional ack, a read-through) — and each such row releases its backlog slot exactly once (the
 * INSERT's RETURNING). Who wins between an ack and expiry is decided under the member's row lock:
 * an ack applied before the instant delivers; any decision at or after it — `GREATEST(now(),
 * mm.expiry_mark)`, the mark being the sweeper's decision time read from the locked row's newest
 * version — treats the message as expired, so a statement whose snapshot predates the sweeper's
 * rows still agrees with it.
 */

const DELIVERED = 'GREATEST(mm.delivered_seq, mm.joined_seq - 1)'
const READ = 'GREATEST(mm.read_seq, mm.joined_seq - 1)'

/** Message `m` is past its expiry at the decision instant `at` (a timestamptz expression). */
const expiredAt = (at: string) => `(m.expires_at IS NOT NULL AND m.expires_at <= ${at})`
/** Decision instant of a statement holding member `alias`'s row lock (see the header). */
const decidedAt = (mark: string) => `GREATEST(now(), ${mark})`

/** Conditions on `m` (messages) for member `mm` that make it addressed to the member. */
const ADDRESSED = `m.sender_id <> mm.agent_id AND m.seq >= mm.joined_seq
  AND NOT EXISTS (SELECT 1 FROM delivery_skips s WHERE s.agent_id = mm.agent_id AND s.conversation_id = m.conversation_id AND s.seq = m.seq)`
/** …and still stored for it (given the seq range above the delivered cursor). */
const PENDING = `${ADDRESSED}
  AND NOT EXISTS (SELECT 1 FROM delivery_acks d WHERE d.agent_id = mm.agent_id AND d.conversation_id = m.conversation_id AND d.seq = m.seq)
  AND NOT EXISTS (SELECT 1 FROM message_reads r WHERE r.agent_id = mm.agent_id AND r.conversation_id = m.conversation_id AND r.seq = m.seq)
  AND NOT EXISTS (SELECT 1 FROM message_hides h WHERE h.agent_id = mm.agent_id AND h.message_id = m.id)`

export const MESSAGE_COLS = 'm.id, m.conversation_id, m.seq, m.sender_id, m.client_msg_id, m.type, m.content, m.metadata, m.created_at'

export interface InboxRow {
  id: string
  conversation_id: string
  seq: string | number
  sender_id: string
  client_msg_id: string
  type: string
  content: Record<string, unknown> | string
  metadata: Record<string, unknown> | string
  created_at: Date | string
  pos: string
}

/**
 * The recipient's stored messages after `afterPosition`, oldest (lowest position) first: sync
 * pages and the WebSocket backlog drain. One index range per active conversation, from its
 * cursor up.
 */
export function inbox(sql: RawSql, recipientId: string, afterPosition: bigint, limit: number): Promise<InboxRow[]> {
  return sql.query<InboxRow>(
    `SELECT x.* FROM conversation_members mm
     CROSS JOIN LATERAL (
       SELECT ${MESSAGE_COLS}, m.position::text AS pos, m.position AS p FROM messages m
       WHERE m.conversation_id = mm.conversation_id AND m.seq > ${DELIVERED} AND m.position > $2 AND ${PENDING}
         AND (m.expires_at IS NULL OR m.expires_at > now())
       ORDER BY m.seq LIMIT $3) x
     WHERE mm.agent_id = $1 AND mm.left_at IS NULL
     ORDER BY x.p LIMIT $3`,
    [recipientId, afterPosition.toString(), limit],
  )
}

/** The recipient's stored count (the backlog): loaded once, then moved by every transition. */
export async function countStored(sql: RawSql, recipientId: string): Promise<number> {
  const rows = await sql.query<{ n: string | number }>(
    `SELECT count(*) AS n FROM conversation_members mm
     JOIN messages m ON m.conversation_id = mm.conversation_id AND m.seq > ${DELIVERED}
     WHERE mm.agent_id = $1 AND mm.left_at IS NULL AND ${PENDING}`,
    [recipientId],
  )
  return Number(rows[0]?.n ?? 0)
}

/**
 * How many live agents have more than each of `bounds` stored messages: the backlog distribution
 * for /internal/metrics, in one statement. Never a scan of `messages`: a pass over the active
 * memberships finds those whose delivered cursor is below the conversation's `last_seq` (a
 * hash join to `conversations` by primary key), and for each of those one index range of
 * `messages_conv_seq_uq` above the cursor, at most `window` seqs long, is counted with the same
 * conditions as `countStored`. So the cost follows the number of memberships plus the undelivered
 * volume (at most `window` rows per membership), not the history. Past `window` seqs above a
 * cursor (a sender's own unanswered messages count toward the gap, not the backlog) the count is a
 * lower bound.
 */
export async function backlogOver(sql: RawSql, bounds: readonly number[], window: number): Promise<{ agents: number; over: number[] }> {
  const rows = await sql.query<{ bound: number; over: number; agents: number }>(
    `WITH open AS (
       SELECT mm.agent_id, mm.conversation_id, mm.joined_seq, ${DELIVERED} AS cur
       FROM conversation_members mm JOIN conversations c ON c.id = mm.conversation_id
       WHERE mm.left_at IS NULL AND c.last_seq > ${DELIVERED}
     ),
     per_agent AS MATERIALIZED (
       SELECT mm.agent_id, sum((
         SELECT count(*) FROM messages m
         WHERE m.conversation_id = mm.conversation_id AND m.seq > mm.cur AND m.seq <= mm.cur + $1::int AND ${PENDING}
       )) AS n
       FROM open mm GROUP BY mm.agent_id
     ),
     -- MATERIALIZED: computed once, not once per bound.
     live AS MATERIALIZED (SELECT p.n FROM per_agent p JOIN agents a ON a.id = p.agent_id WHERE a.status <> 'deleted' AND p.n > 0)
     SELECT b::int AS bound, count(live.n)::int AS over,
            (SELECT count(*) FROM agents WHERE status <> 'deleted')::int AS agents
     FROM unnest($2::int[]) AS b LEFT JOIN live ON live.n > b
     GROUP BY b ORDER BY b`,
    [window, [...bounds]],
  )
  const byBound = new Map(rows.map((r) => [Number(r.bound), Number(r.over)]))
  return { agents: Number(rows[0]?.agents ?? 0), over: bounds.map((b) => byBound.get(b) ?? 0) }
}

/** A cursor that moved: who, where, from and to, and how many messages left `stored` for the backlog. */
export interface Moved {
  agentId: string
  conversationId: string
  from: number
  to: number
  released: number
}

export interface AckedSeq {
  agentId: string
  conversationId: string
  seq: number
}

/** A held ack; `persist`: its gap has stayed open long enough to record it as a delivery exception. */
export interface HeldAck extends AckedSeq {
  persist: boolean
}

/**
 * Apply delivery acks. `acks` are (recipient, message id) pairs from WebSocket ack frames and
 * legacy writes; `held` are acks resolved earlier that could not be applied yet. Each member's
 * delivered cursor advances to just below its first addressed message that is neither acked nor
 * otherwise out of `stored` (or to the conversation's end when there is none): contiguously, so
 * an ack past a gap never marks the gap delivered. Held acks marked `persist` that are still
 * above the new cursor are recorded in delivery_acks (delivered on their own; the cursor folds
 * them in later). Returns the cursors that moved, what left `stored`, and the resolved acks
 * still above their member's new cursor (the caller holds them for the next flush).
 */
export async function applyAcks(
  sql: RawSql,
  acks: { agentId: string; messageId: string }[],
  held: HeldAck[],
): Promise<{ moved: Moved[]; above: AckedSeq[]; persisted: { agentId: string; released: number }[] }> {
  const rows = await sql.query<{ kind: 'cur' | 'ack' | 'pst'; r: string; c: string; a: string | number; b: string | number | null; n: string | number | null }>(
    `WITH a AS (
       SELECT DISTINCT r, c, seq FROM (
         SELECT v.r, m.conversation_id AS c, m.seq FROM unnest($1::text[], $2::text[]) AS v(r, mid) JOIN messages m ON m.id = v.mid
         UNION ALL
         SELECT h.r, h.c, h.seq FROM unnest($3::text[], $4::text[], $5::bigint[]) AS h(r, c, seq)) x
     ),
     ka AS (SELECT r, c, array_agg(seq) AS seqs FROM a GROUP BY r, c),
     k AS MATERIALIZED (
       SELECT mm.agent_id, mm.conversation_id, ${DELIVERED} AS cur, ka.seqs, ${PLAIN} AS plain, ${decidedAt('mm.expiry_mark')} AS at
       FROM conversation_members mm JOIN ka ON ka.r = mm.agent_id AND ka.c = mm.conversation_id
       WHERE mm.left_at IS NULL
       ORDER BY mm.agent_id, mm.conversation_id
       FOR UPDATE OF mm
     ),
     n AS (
       SELECT k.agent_id, k.conversation_id, k.cur, k.plain, k.at, COALESCE(
         -- Expired and still stored: a gap even when acked (too late), until its skip row exists.
         (SELECT m.seq - 1 FROM messages m, conversation_members mm
          WHERE mm.agent_id = k.agent_id AND mm.conversation_id = k.conversation_id
            AND m.conversation_id = k.conversation_id AND m.seq > k.cur AND (m.seq <> ALL(k.seqs) OR ${expiredAt('k.at')}) AND ${pendingFast('k.plain')}
          ORDER BY m.seq LIMIT 1),
         (SELECT max(m.seq) FROM messages m WHERE m.conversation_id = k.conversation_id),
         k.cur) AS nxt
       FROM k
     ),
     upd AS (
       UPDATE conversation_members mm SET delivered_seq = n.nxt, delivered_at = now()
       FROM n WHERE mm.agent_id = n.agent_id AND mm.conversation_id = n.conversation_id AND n.nxt > n.cur
       RETURNING mm.agent_id
     ),
     folded AS (
       DELETE FROM delivery_acks d USING n WHERE d.agent_id = n.agent_id AND d.conversation_id = n.conversation_id AND d.seq <= n.nxt AND n.nxt > n.cur
       RETURNING 1
     ),
     pst AS (
       INSERT INTO delivery_acks (agent_id, conversation_id, seq)
       SELECT p.r, p.c, p.seq FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[]) AS p(r, c, seq, persist)
       JOIN n ON n.agent_id = p.r AND n.conversation_id = p.c AND p.seq > n.nxt
       JOIN messages m ON m.conversation_id = p.c AND m.seq = p.seq
       WHERE p.persist = 't' AND NOT ${expiredAt('n.at')}
       ORDER BY 1, 2, 3
       ON CONFLICT DO NOTHING
       RETURNING agent_id, conversation_id, seq
     )
     SELECT 'cur' AS kind, n.agent_id AS r, n.conversation_id AS c, n.cur AS a, n.nxt AS b,
       CASE WHEN n.nxt > n.cur THEN (SELECT count(*) FROM messages m, conversation_members mm
        WHERE mm.agent_id = n.agent_id AND mm.conversation_id = n.conversation_id
          AND m.conversation_id = n.conversation_id AND m.seq > n.cur AND m.seq <= n.nxt AND ${pendingFast('n.plain')}) ELSE 0 END AS n
     FROM n WHERE n.nxt > n.cur
     UNION ALL
     -- Only the acks still above their member's cursor come back (to be held); the rest are applied.
     SELECT 'ack', a.r, a.c, a.seq, NULL, NULL FROM a JOIN n ON n.agent_id = a.r AND n.conversation_id = a.c WHERE a.seq > n.nxt
     UNION ALL
     -- Recorded now, and still stored in this statement's snapshot: they leave 'stored' here.
     SELECT 'pst', pst.agent_id, pst.conversation_id, 0, NULL,
       (SELECT count(*) FROM messages m, conversation_members mm
        WHERE mm.agent_id = pst.agent_id AND mm.conversation_id = pst.conversation_id
          AND m.conversation_id = pst.conversation_id AND m.seq = pst.seq AND m.seq > ${DELIVERED} AND ${PENDING})
     FROM pst`,
    [acks.map((x) => x.agentId), acks.map((x) => x.messageId), held.map((x) => x.agentId), held.map((x) => x.conversationId), held.map((x) => x.seq), held.map((x) => (x.persist ? 't' : 'f'))],
  )
  const moved: Moved[] = []
  const above: AckedSeq[] = []
  const persisted: { agentId: string; released: number }[] = []
  for (const r of rows) {
    if (r.kind === 'pst') persisted.push({ agentId: r.r, released: Number(r.n) })
    else if (r.kind === 'ack') above.push({ agentId: r.r, conversationId: r.c, seq: Number(r.a) })
    else moved.push({ agentId: r.r, conversationId: r.c, from: Number(r.a), to: Number(r.b), released: Number(r.n) })
  }
  return { moved, above, persisted }
}

/**
 * Sync's positional ack: every message of the recipient at or before `position` is delivered.
 * Per conversation that is a prefix in seq order (positions rise with seq), so the cursor moves
 * to the last seq at or before the position.
 */
export async function ackThroughPosition(sql: RawSql, recipientId: string, position: bigint): Promise<Moved[]> {
  const rows = await sql.query<{ c: string; a: string | number; b: string | number; n: string | number }>(
    `WITH k AS MATERIALIZED (
       SELECT mm.conversation_id, ${DELIVERED} AS cur, ${decidedAt('mm.expiry_mark')} AS at FROM conversation_members mm
       JOIN conversations cv ON cv.id = mm.conversation_id AND cv.last_seq > ${DELIVERED}
       WHERE mm.agent_id = $1 AND mm.left_at IS NULL
       ORDER BY mm.conversation_id
       FOR UPDATE OF mm
     ),
     n AS (
       SELECT k.conversation_id, k.cur, k.at,
         (SELECT m.seq FROM messages m WHERE m.conversation_id = k.conversation_id AND m.seq > k.cur AND m.position <= $2 ORDER BY m.seq DESC LIMIT 1) AS nxt
       FROM k
     ),
     upd AS (
       UPDATE conversation_members mm SET delivered_seq = n.nxt, delivered_at = now()
       FROM n WHERE mm.agent_id = $1 AND mm.conversation_id = n.conversation_id AND n.nxt IS NOT NULL
       RETURNING 1
     ),
     folded AS (
       DELETE FROM delivery_acks d USING n WHERE d.agent_id = $1 AND d.conversation_id = n.conversation_id AND d.seq <= n.nxt AND n.nxt IS NOT NULL
       RETURNING 1
     ),
     ${expireInRange('$1', 'n', 'n.cur', 'n.nxt')}
     SELECT n.conversation_id AS c, n.cur AS a, n.nxt AS b,
       (SELECT count(*) FROM messages m, conversation_members mm
        WHERE mm.agent_id = $1 AND mm.conversation_id = n.conversation_id
          AND m.conversation_id = n.conversation_id AND m.seq > n.cur AND m.seq <= n.nxt AND ${PENDING} AND NOT ${expiredAt('n.at')})
       + (SELECT count(*) FROM gone WHERE gone.conversation_id = n.conversation_id) AS n
     FROM n WHERE n.nxt IS NOT NULL`,
    [recipientId, position.toString()],
  )
  return rows.map((r) => ({ agentId: recipientId, conversationId: r.c, from: Number(r.a), to: Number(r.b), released: Number(r.n) }))
}

/**
 * Read through a seq in one conversation (WebSocket `message.read_ack`): both cursors move (a
 * read message is delivered too), per-message read exceptions below it are folded in. Returns
 * what left `stored` and the senders whose messages became read.
 */
export async function readThrough(sql: RawSql, recipientId: string, conversationId: string, throughSeq: number) {
  const rows = await sql.query<{ released: string | number | null; senders: string[] | null; moved: boolean }>(
    `WITH k AS MATERIALIZED (
       SELECT $2::text AS conversation_id, ${DELIVERED} AS dcur, ${READ} AS rcur, ${decidedAt('mm.expiry_mark')} AS at,
              LEAST($3::bigint, (SELECT last_seq FROM conversations WHERE id = $2)) AS upto
       FROM conversation_members mm WHERE mm.agent_id = $1 AND mm.conversation_id = $2 AND mm.left_at IS NULL
       FOR UPDATE OF mm
     ),
     stats AS (
       SELECT
         (SELECT count(*) FROM messages m, conversation_members mm
          WHERE mm.agent_id = $1 AND mm.conversation_id = $2 AND m.conversation_id = $2
            AND m.seq > k.dcur AND m.seq <= k.upto AND ${PENDING} AND NOT ${expiredAt('k.at')}) AS released,
         (SELECT array_agg(DISTINCT m.sender_id) FROM messages m, conversation_members mm
          WHERE mm.agent_id = $1 AND mm.conversation_id = $2 AND m.conversation_id = $2
            AND m.seq > k.rcur AND m.seq <= k.upto AND ${ADDRESSED}
            AND NOT (m.seq > k.dcur AND ${expiredAt('k.at')} AND ${PENDING})
            AND NOT EXISTS (SELECT 1 FROM message_reads r WHERE r.agent_id = $1 AND r.conversation_id = $2 AND r.seq = m.seq)) AS senders,
         k.upto > k.rcur AS moved, k.upto
       FROM k
     ),
     ${expireInRange('$1', 'k', 'k.dcur', 'k.upto')},
     upd AS (
       UPDATE conversation_members mm SET
         read_seq = GREATEST(mm.read_seq, stats.upto), read_at = now(),
         delivered_seq = GREATEST(mm.delivered_seq, stats.upto),
         delivered_at = CASE WHEN mm.delivered_seq < stats.upto THEN now() ELSE mm.delivered_at END
       FROM stats WHERE mm.agent_id = $1 AND mm.conversation_id = $2 AND stats.moved
       RETURNING 1
     ),
     folded AS (
       DELETE FROM message_reads r USING stats WHERE r.agent_id = $1 AND r.conversation_id = $2 AND r.seq <= stats.upto AND stats.moved
       RETURNING 1
     ),
     folded_acks AS (
       DELETE FROM delivery_acks d USING stats WHERE d.agent_id = $1 AND d.conversation_id = $2 AND d.seq <= stats.upto AND stats.moved
       RETURNING 1
     )
     SELECT released + (SELECT count(*) FROM gone) AS released, senders, moved FROM stats`,
    [recipientId, conversationId, throughSeq],
  )
  const r = rows[0]
  return { released: Number(r?.released ?? 0), senders: r?.moved ? (r.senders ?? []) : [] }
}

/**
 * Mark one message read (POST /v1/messages/:id/read), and only that one: at or below the read
 * cursor it already is; otherwise it becomes a per-message read exception. Null when the message
 * is not addressed to the caller. `was`: 0 stored, 1 delivered, 2 already read.
 */
export async function readOne(sql: RawSql, recipientId: string, messageId: string) {
  const rows = await sql.query<{ was: number; read_at: Date | string; sender_id: string; conversation_id: string; seq: string | number }>(
    `WITH t AS (
       SELECT m.conversation_id, m.seq, m.sender_id, m.id,
              m.seq <= ${READ} AS by_cursor,
              (m.seq <= ${DELIVERED} OR EXISTS (SELECT 1 FROM delivery_acks d WHERE d.agent_id = mm.agent_id AND d.conversation_id = m.conversation_id AND d.seq = m.seq)) AS delivered,
              EXISTS (SELECT 1 FROM message_hides h WHERE h.agent_id = mm.agent_id AND h.message_id = m.id) AS hidden,
              mm.read_at AS cursor_read_at
       FROM messages m JOIN conversation_members mm ON mm.conversation_id = m.conversation_id AND mm.agent_id = $2
       WHERE m.id = $1 AND ${ADDRESSED}
         -- Expired while still stored: never delivered, so not readable either (decided under the lock).
         AND NOT (${expiredAt(decidedAt('mm.expiry_mark'))} AND m.seq > ${DELIVERED} AND ${PENDING})
       FOR UPDATE OF mm
     ),
     ins AS (
       INSERT INTO message_reads (agent_id, conversation_id, seq)
       SELECT $2, t.conversation_id, t.seq FROM t WHERE NOT t.by_cursor
       ON CONFLICT DO NOTHING
       RETURNING read_at
     )
     SELECT CASE WHEN t.by_cursor OR NOT EXISTS (SELECT 1 FROM ins) THEN 2 WHEN t.delivered OR t.hidden THEN 1 ELSE 0 END AS was,
            COALESCE((SELECT read_at FROM ins), (SELECT r.read_at FROM message_reads r WHERE r.agent_id = $2 AND r.conversation_id = t.conversation_id AND r.seq = t.seq), t.cursor_read_at, now()) AS read_at,
            t.sender_id, t.conversation_id, t.seq
     FROM t`,
    [messageId, recipientId],
  )
  const r = rows[0]
  if (!r) return null
  return { was: Number(r.was), readAt: new Date(r.read_at), senderId: r.sender_id, conversationId: r.conversation_id, seq: Number(r.seq) }
}

/** Whether a message is stored for a member (before a hide takes it out of `stored`). */
export async function isStored(sql: RawSql, recipientId: string, messageId: string): Promise<boolean> {
  const rows = await sql.query(
    `SELECT 1 FROM messages m JOIN conversation_members mm ON mm.conversation_id = m.conversation_id AND mm.agent_id = $2
     WHERE m.id = $1 AND m.seq > ${DELIVERED} AND ${PENDING}`,
    [messageId, recipientId],
  )
  return rows.length > 0
}

/**
 * Members leaving (leave, removal, group deletion): their cursors move to the conversation's end
 * and they stop counting anything as stored there. Locks in (agent, conversation) order. Returns
 * per member what left `stored`.
 */
export async function departAll(q: RawSql, conversationId: string, agentIds: string[] | null): Promise<{ agentId: string; released: number }[]> {
  const rows = await q.query<{ agent_id: string; n: string | number }>(
    `WITH k AS MATERIALIZED (
       SELECT mm.agent_id, ${DELIVERED} AS cur FROM conversation_members mm
       WHERE mm.conversation_id = $1 AND mm.left_at IS NULL AND ($2::text[] IS NULL OR mm.agent_id = ANY($2::text[]))
       ORDER BY mm.agent_id
       FOR UPDATE OF mm
     ),
     counted AS (
       SELECT k.agent_id, (SELECT count(*) FROM messages m, conversation_members mm
          WHERE mm.agent_id = k.agent_id AND mm.conversation_id = $1 AND m.conversation_id = $1 AND m.seq > k.cur AND ${PENDING}) AS n
       FROM k
     ),
     upd AS (
       UPDATE conversation_members mm SET left_at = now(), delivered_seq = GREATEST(mm.delivered_seq, cv.last_seq), delivered_at = now()
       FROM k, conversations cv WHERE mm.conversation_id = $1 AND mm.agent_id = k.agent_id AND cv.id = $1
       RETURNING 1
     )
     SELECT agent_id, n FROM counted`,
    [conversationId, agentIds],
  )
  return rows.map((r) => ({ agentId: r.agent_id, released: Number(r.n) }))
}

/** Unread per conversation for the conversation list and context: count, oldest and newest seq. */
export async function unreadIn(sql: RawSql, agentId: string, conversationIds: string[]) {
  if (conversationIds.length === 0) return new Map<string, { n: number; min: number | null; max: number | null }>()
  const rows = await sql.query<{ conversation_id: string; n: string | number; min: string | number | null; max: string | number | null }>(
    `SELECT mm.conversation_id, count(m.seq) AS n, min(m.seq) AS min, max(m.seq) AS max
     FROM conversation_members mm
     JOIN messages m ON m.conversation_id = mm.conversation_id AND m.seq > ${READ} AND ${PENDING}
     WHERE mm.agent_id = $1 AND mm.conversation_id = ANY($2::text[])
     GROUP BY mm.conversation_id`,
    [agentId, conversationIds],
  )
  return new Map(rows.map((r) => [r.conversation_id, { n: Number(r.n), min: r.min === null ? null : Number(r.min), max: r.max === null ? null : Number(r.max) }]))
}

/**
 * PENDING for the ack path, where most members have no exception rows at all: one probe per
 * member (`plain`, computed once per flush) instead of four per message scanned.
 */
const pendingFast = (plain: string) => `m.sender_id <> mm.agent_id AND m.seq >= mm.joined_seq AND (${plain} OR (
  NOT EXISTS (SELECT 1 FROM delivery_skips s WHERE s.agent_id = mm.agent_id AND s.conversation_id = m.conversation_id AND s.seq = m.seq)
  AND NOT EXISTS (SELECT 1 FROM delivery_acks d WHERE d.agent_id = mm.agent_id AND d.conversation_id = m.conversation_id AND d.seq = m.seq)
  AND NOT EXISTS (SELECT 1 FROM message_reads r WHERE r.agent_id = mm.agent_id AND r.conversation_id = m.conversation_id AND r.seq = m.seq)
  AND NOT EXISTS (SELECT 1 FROM message_hides h WHERE h.agent_id = mm.agent_id AND h.message_id = m.id)))`

/** No exception row of any kind for member `mm` in its conversation. */
const PLAIN = `NOT EXISTS (SELECT 1 FROM delivery_skips s WHERE s.agent_id = mm.agent_id AND s.conversation_id = mm.conversation_id)
  AND NOT EXISTS (SELECT 1 FROM delivery_acks d WHERE d.agent_id = mm.agent_id AND d.conversation_id = mm.conversation_id)
  AND NOT EXISTS (SELECT 1 FROM message_reads r WHERE r.agent_id = mm.agent_id AND r.conversation_id = mm.conversation_id)
  AND NOT EXISTS (SELECT 1 FROM message_hides h WHERE h.agent_id = mm.agent_id AND h.conversation_id = mm.conversation_id)`

/**
 * A CTE `gone` for a statement moving member `agent`'s delivered cursor from `from` to `to` in the
 * conversations of `src` (which carries `conversation_id` and the decision instant `at`): the
 * messages it passes that are expired and still stored become expired for the member (a skip
 * row) instead of delivered. RETURNING lists only rows this statement wrote, so a row the sweeper
 * wrote meanwhile is neither counted twice nor released twice.
 */
function expireInRange(agent: string, src: string, from: string, to: string) {
  return `gone AS (
       INSERT INTO delivery_skips (agent_id, conversation_id, seq, expired)
       SELECT ${agent}, m.conversation_id, m.seq, true FROM ${src}
       JOIN conversation_members mm ON mm.agent_id = ${agent} AND mm.conversation_id = ${src}.conversation_id
       JOIN messages m ON m.conversation_id = ${src}.conversation_id AND m.seq > ${from} AND m.seq <= ${to}
       WHERE ${to} IS NOT NULL AND ${to} > ${from} AND m.expires_at IS NOT NULL AND ${expiredAt(`${src}.at`)} AND ${PENDING}
       ORDER BY 1, 2, 3
       ON CONFLICT DO NOTHING
       RETURNING conversation_id
     )`
}

/**
 * Message `m` passed its expiry before reaching agent `me` (a SQL parameter or expression): never
 * delivered, so left out of whatever else shows messages to it (threads, the conversation list's
 * preview). History has its own form of this (it joins the same exception rows anyway).
 */
export const expiredForReader = (me: string) => `(m.sender_id <> ${me} AND m.expires_at IS NOT NULL AND m.expires_at <= now() AND NOT EXISTS (
  SELECT 1 FROM conversation_members mm WHERE mm.conversation_id = m.conversation_id AND mm.agent_id = ${me}
    AND NOT EXISTS (SELECT 1 FROM delivery_skips s WHERE s.agent_id = mm.agent_id AND s.conversation_id = m.conversation_id AND s.seq = m.seq)
    AND (m.seq <= ${DELIVERED} OR m.seq <= ${READ}
      OR EXISTS (SELECT 1 FROM delivery_acks d WHERE d.agent_id = mm.agent_id AND d.conversation_id = m.conversation_id AND d.seq = m.seq)
      OR EXISTS (SELECT 1 FROM message_reads r WHERE r.agent_id = mm.agent_id AND r.conversation_id = m.conversation_id AND r.seq = m.seq))))`

/** SQL pieces for queries elsewhere that report a member's view of a message (history). */
export const CURSOR_SQL = { DELIVERED, READ, ADDRESSED, PENDING, expiredAt, decidedAt }
