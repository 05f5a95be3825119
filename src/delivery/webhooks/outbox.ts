import type { RawSql } from '../../db/client.ts'
import { WAKE_FILTER_SQL } from '../wake-sql.ts'

/*
 * The webhook outbox (contract §13). An event is enqueued in the same transaction — for
 * `message.new`, the same statement — as the change it reports, as one row per subscribed active
 * webhook of each recipient, so a crash between commit and POST loses nothing and an event the
 * change did not commit is never sent. Delivery ids are deterministic per (event, webhook):
 * enqueuing the same event twice collapses into one row (ON CONFLICT DO NOTHING).
 */

export const WEBHOOK_EVENTS = [
  'message.new',
  'message.read',
  'presence.update',
  'contact.blocked',
  'contact.request.received',
  'contact.request.approved',
  'group.invite.received',
  'group.deleted',
  'agent.created',
  'message.approved',
  'message.rejected',
  'conversation.loop_detected',
  'wake.digest',
  'message.expired',
] as const
export type WebhookEventName = (typeof WEBHOOK_EVENTS)[number]

/** `whd_` + 16 base64url characters of SHA-256(event key ":" webhook id), computed in SQL. */
export const deliveryIdSql = (keyExpr: string, webhookIdExpr: string) =>
  `'whd_' || translate(left(encode(sha256(convert_to(${keyExpr} || ':' || ${webhookIdExpr}, 'UTF8')), 'base64'), 16), '+/', '-_')`

/** The exact body that is signed and posted: `{"event", "timestamp", "data"}`. */
export function envelope(event: WebhookEventName, data: unknown, at = new Date()): string {
  return JSON.stringify({ event, timestamp: at.toISOString(), data })
}

/** Recipients whose webhooks get an event: listed agents, or every system agent (`agent.created`). */
export type Recipients = { agents: string[] } | { systemAgents: true }

/**
 * Enqueue `event` for the active webhooks of `to` that subscribe to it; run it on the transaction
 * of the change. `key` names the event occurrence (deterministic delivery ids). Fully paused
 * agents get no webhooks (contract §13.2). Returns the number of deliveries enqueued.
 */
export async function enqueue(q: RawSql, event: WebhookEventName, key: string, data: unknown, to: Recipients): Promise<number> {
  if ('agents' in to && to.agents.length === 0) return 0
  const who = 'agents' in to ? 'w.agent_id = ANY($4::text[])' : 'a.is_system'
  const params: unknown[] = [event, `${event}:${key}`, envelope(event, data)]
  if ('agents' in to) params.push(to.agents)
  const rows = await q.query(
    `INSERT INTO webhook_deliveries (id, webhook_id, agent_id, event, body)
     SELECT ${deliveryIdSql('$2::text', 'w.id')}, w.id, w.agent_id, $1, $3
     FROM webhooks w JOIN agents a ON a.id = w.agent_id
     WHERE w.active AND $1 = ANY(w.events) AND a.paused_by_owner <> 'full' AND a.status <> 'deleted' AND ${who}
     ORDER BY w.id
     ON CONFLICT (id) DO NOTHING
     RETURNING 1`,
    params,
  )
  return rows.length
}

/**
 * The `message.new` part of the writer's statement: for each message just numbered, one row per
 * subscribed webhook of each active member other than the sender, except members the send skipped
 * (backlog cap), members who muted the sender or the conversation, fully paused agents, and
 * members whose wake filters hold this message back (quiet hours, contacts only, mentions). The
 * body is built at the first attempt from `message_id`. The uncorrelated EXISTS is evaluated once
 * per statement: with no `message.new` webhook anywhere, the join costs nothing.
 */
export const MESSAGE_NEW_OUTBOX_CTE = `hooks AS (
  INSERT INTO webhook_deliveries (id, webhook_id, agent_id, event, message_id)
  SELECT ${deliveryIdSql("'message.new:' || n.id", 'w.id')}, w.id, w.agent_id, 'message.new', n.id
  FROM numbered n
  JOIN conversation_members hm ON hm.conversation_id = n.c AND hm.left_at IS NULL AND hm.agent_id <> n.snd AND n.seq >= hm.joined_seq
  JOIN webhooks w ON w.agent_id = hm.agent_id AND w.active AND 'message.new' = ANY(w.events)
  JOIN agents ha ON ha.id = hm.agent_id AND ha.paused_by_owner <> 'full'
  WHERE EXISTS (SELECT 1 FROM webhooks ew WHERE ew.active AND 'message.new' = ANY(ew.events))
    AND (n.sk IS NULL OR NOT (n.sk::jsonb ? hm.agent_id))
    AND ${WAKE_FILTER_SQL}
    AND NOT EXISTS (SELECT 1 FROM mutes mu WHERE mu.muter_agent_id = hm.agent_id
      AND ((mu.target_kind = 'agent' AND mu.target_id = n.snd) OR (mu.target_kind = 'conversation' AND mu.target_id = n.c))
      AND (mu.muted_until IS NULL OR mu.muted_until > now()))
  ORDER BY 1
  ON CONFLICT (id) DO NOTHING
)`
