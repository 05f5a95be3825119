import type { RawSql } from '../../db/client.ts'
import type { WebhookEventName } from '../../delivery/webhooks/outbox.ts'

export interface WebhookRow {
  id: string
  agent_id: string
  url: string
  events: string[]
  active: boolean
  created_at: Date | string
}

export const toWebhook = (r: WebhookRow) => ({
  id: r.id,
  url: r.url,
  events: r.events as WebhookEventName[],
  active: r.active,
  created_at: new Date(r.created_at).toISOString(),
})

const COLS = 'id, agent_id, url, events, active, created_at'

export async function activeCount(q: RawSql, agentId: string): Promise<number> {
  const [r] = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhooks WHERE agent_id = $1 AND active`, [agentId])
  return r?.n ?? 0
}

export async function insertWebhook(q: RawSql, w: { id: string; agentId: string; url: string; events: string[]; secretEnc: string }) {
  const [r] = await q.query<WebhookRow>(
    `INSERT INTO webhooks (id, agent_id, url, events, secret_enc) VALUES ($1, $2, $3, $4::text[], $5) RETURNING ${COLS}`,
    [w.id, w.agentId, w.url, w.events, w.secretEnc],
  )
  return r!
}

export function listWebhooks(q: RawSql, agentId: string) {
  return q.query<WebhookRow>(`SELECT ${COLS} FROM webhooks WHERE agent_id = $1 AND active ORDER BY created_at, id`, [agentId])
}

/** Another agent's webhook is indistinguishable from one that does not exist. */
export async function ownWebhook(q: RawSql, agentId: string, id: string) {
  const [r] = await q.query<WebhookRow>(`SELECT ${COLS} FROM webhooks WHERE id = $1 AND agent_id = $2 AND active`, [id, agentId])
  return r ?? null
}

/** Deactivate and drop what it had pending: a deleted webhook receives nothing more. */
export async function deleteWebhook(q: RawSql, agentId: string, id: string): Promise<boolean> {
  const rows = await q.query(
    `WITH w AS (UPDATE webhooks SET active = false WHERE id = $1 AND agent_id = $2 AND active RETURNING id)
     , d AS (DELETE FROM webhook_deliveries d USING w WHERE d.webhook_id = w.id AND d.state = 'pending')
     SELECT id FROM w`,
    [id, agentId],
  )
  return rows.length > 0
}
