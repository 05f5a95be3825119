import type { AppContext } from '../../context.ts'
import { fail } from '../../http/errors.ts'
import type { AgentRecord } from '../agents/record.ts'
import { avatarUrl, profileBody } from '../agents/shapes.ts'
import { listContacts } from '../contacts/queries.ts'
import { detailBody, memberOf } from '../groups/service.ts'
import { normalizeHandle } from '../../lib/handles.ts'

/*
 * The owner's read views (contract §15), always for one claimed agent (the routes resolve it
 * first, 404 otherwise). They read what the agent could read itself, from the agent's side:
 * nothing here widens what an agent's own key already sees.
 */

const iso = (v: Date | string | null) => (v === null ? null : new Date(v).toISOString())

/** The agent's conversations, most recent first: enough to list and open them. */
export async function conversationsOf(ctx: AppContext, agent: AgentRecord) {
  const rows = await ctx.database.raw.query<{
    id: string
    type: 'direct' | 'group'
    agent_a: string | null
    agent_b: string | null
    name: string | null
    last_seq: string | number
    last_message_at: Date | string | null
    created_at: Date | string
    active: boolean
  }>(
    `SELECT c.id, c.type, c.agent_a, c.agent_b, c.name, c.last_seq, c.last_message_at, c.created_at, mm.left_at IS NULL AS active
     FROM conversation_members mm JOIN conversations c ON c.id = mm.conversation_id
     WHERE mm.agent_id = $1
     ORDER BY c.last_message_at DESC NULLS LAST, c.id
     LIMIT 200`,
    [agent.id],
  )
  const out = []
  for (const r of rows) {
    const other = r.type === 'direct' ? await ctx.agents.get(r.agent_a === agent.id ? r.agent_b! : r.agent_a!) : null
    out.push({
      id: r.id,
      type: r.type,
      counterpart: other ? { handle: other.handle, display_name: other.displayName, avatar_url: avatarUrl(ctx.config.publicUrl, other.avatarKey) } : null,
      group_name: r.type === 'group' ? r.name : null,
      last_seq: Number(r.last_seq),
      last_message_at: iso(r.last_message_at),
      created_at: iso(r.created_at)!,
      active: r.active,
    })
  }
  return out
}

/**
 * A page of one conversation's messages, oldest first (the 50 before `before_seq`), from the
 * agent's side: only what the agent may see (from its join point; not what it hid).
 */
export async function messagesOf(ctx: AppContext, agent: AgentRecord, conversationId: string, beforeSeq: number | null) {
  const mm = await ctx.database.raw.query<{ joined_seq: string | number }>(
    `SELECT joined_seq FROM conversation_members WHERE conversation_id = $1 AND agent_id = $2`,
    [conversationId, agent.id],
  )
  if (!mm[0]) throw fail('CONVERSATION_NOT_FOUND')
  const rows = await ctx.database.raw.query<{
    id: string
    seq: string | number
    sender_id: string
    type: string
    content: unknown
    metadata: unknown
    created_at: Date | string
  }>(
    `SELECT m.id, m.seq, m.sender_id, m.type, m.content, m.metadata, m.created_at FROM messages m
     WHERE m.conversation_id = $1 AND m.seq >= $2 AND ($3::bigint IS NULL OR m.seq < $3::bigint)
       AND NOT EXISTS (SELECT 1 FROM message_hides h WHERE h.agent_id = $4 AND h.message_id = m.id)
     ORDER BY m.seq DESC LIMIT 50`,
    [conversationId, Number(mm[0].joined_seq), beforeSeq, agent.id],
  )
  const out = []
  for (const r of rows.reverse()) {
    const sender = await ctx.agents.get(r.sender_id)
    out.push({
      id: r.id,
      conversation_id: conversationId,
      seq: Number(r.seq),
      sender: sender?.handle ?? 'unknown',
      is_own: r.sender_id === agent.id,
      type: r.type,
      content: typeof r.content === 'string' ? JSON.parse(r.content) : r.content,
      metadata: typeof r.metadata === 'string' ? JSON.parse(r.metadata) : r.metadata,
      created_at: iso(r.created_at)!,
    })
  }
  return out
}

export const EVENTS_PAGE = 50

/**
 * The agent's audit timeline, newest first, 50 per page: before an ISO instant, or — with
 * `before_id`, the last event of the previous page — strictly after it in (created_at, id) order,
 * so events sharing a millisecond are neither skipped nor repeated.
 */
export async function eventsOf(ctx: AppContext, agent: AgentRecord, before: string | undefined, beforeId?: string) {
  let beforeAt: string | null = null
  if (before !== undefined && before !== '') {
    const t = Date.parse(before)
    if (Number.isNaN(t)) throw fail('VALIDATION_ERROR', 'before must be an ISO 8601 timestamp')
    beforeAt = new Date(t).toISOString()
  }
  const rows = await ctx.database.raw.query<{ id: string; actor_type: string; action: string; metadata: unknown; created_at: Date | string }>(
    `SELECT id, actor_type, action, metadata, created_at FROM audit_events
     WHERE agent_id = $1 AND ($2::timestamptz IS NULL OR created_at < $2::timestamptz OR (created_at = $2::timestamptz AND $4::text IS NOT NULL AND id < $4::text))
     ORDER BY created_at DESC, id DESC LIMIT $3`,
    [agent.id, beforeAt, EVENTS_PAGE, beforeAt && beforeId ? beforeId : null],
  )
  return rows.map((r) => ({
    id: r.id,
    actor_type: r.actor_type,
    action: r.action,
    metadata: typeof r.metadata === 'string' ? JSON.parse(r.metadata) : r.metadata,
    created_at: iso(r.created_at)!,
  }))
}

export async function contactsOf(ctx: AppContext, agent: AgentRecord) {
  const { rows } = await listContacts(ctx.db, agent.id, 100, 0)
  return rows
}

export async function blocksOf(ctx: AppContext, agent: AgentRecord) {
  const rows = await ctx.database.raw.query<{ blocked_id: string; created_at: Date | string }>(
    `SELECT blocked_id, created_at FROM blocks WHERE blocker_id = $1 ORDER BY created_at DESC LIMIT 200`,
    [agent.id],
  )
  const out = []
  for (const r of rows) {
    const a = await ctx.agents.get(r.blocked_id)
    if (a) out.push({ handle: a.handle, display_name: a.displayName, blocked_at: iso(r.created_at)! })
  }
  return out
}

export const presenceOf = (ctx: AppContext, agent: AgentRecord) => ctx.presence.view(agent.id, agent.handle)

/** Another agent's public profile, as the claimed agent would see it. */
export async function profileFor(ctx: AppContext, rawHandle: string) {
  const a = await ctx.agents.getByHandle(normalizeHandle(rawHandle))
  if (!a || (a.status !== 'active' && a.status !== 'restricted')) throw fail('AGENT_NOT_FOUND')
  return profileBody(a, ctx.config.publicUrl)
}

/** A group the claimed agent belongs to (its own view of it); anything else 404. */
export async function groupFor(ctx: AppContext, agent: AgentRecord, groupId: string) {
  const { g } = await memberOf(ctx, groupId, agent)
  return detailBody(ctx, g, agent.id)
}
