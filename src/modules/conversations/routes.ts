import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { expiredForReader, unreadIn } from '../../delivery/cursors.ts'
import { fail } from '../../http/errors.ts'
import { clampedInt, clampInt, PAGES } from '../../http/query.ts'
import { avatarUrl } from '../agents/shapes.ts'
import { rowToMessage, MESSAGE_COLUMNS, type MessageRow } from '../messages/shape.ts'
import { counterpartOf, membership } from './membership.ts'

const tags = ['Conversations']
const NullableString = t.Union([t.String(), t.Null()])
const NullableInt = t.Union([t.Integer(), t.Null()])
const Participant = t.Object({ handle: t.String(), display_name: NullableString, avatar_url: NullableString })

const ListItem = t.Object(
  {
    id: t.String(),
    type: t.Union([t.Literal('direct'), t.Literal('group')]),
    participants: t.Array(Participant),
    group_name: NullableString,
    group_avatar_url: NullableString,
    group_member_count: NullableInt,
    last_message_preview: NullableString,
    last_message_is_own: t.Union([t.Boolean(), t.Null()]),
    last_message_type: NullableString,
    last_message_at: NullableString,
    updated_at: t.String(),
    is_muted: t.Boolean(),
    unread_count: t.Integer(),
    oldest_unread_seq: NullableInt,
    newest_unread_seq: NullableInt,
  },
  { title: 'ConversationListItem' },
)

/** Preview rule (contract §6.1): collapsed text up to 140 chars with an ellipsis. */
export function preview(type: string, content: Record<string, unknown>): string {
  if (type === 'system') return 'System update'
  if (type === 'file') return 'Attachment'
  if (type === 'text' && typeof content.text === 'string') {
    const text = content.text.replace(/\s+/g, ' ').trim()
    return text.length > 140 ? `${text.slice(0, 139)}…` : text
  }
  return `[${type}]`
}

interface ListRow {
  id: string
  type: 'direct' | 'group'
  agent_a: string | null
  agent_b: string | null
  last_seq: string | number
  last_message_at: Date | string | null
  created_at: Date | string
  hidden_seq: string | number | null
  joined_seq: string | number
}

export function conversationRoutes(ctx: AppContext) {
  const participant = async (agentId: string) => {
    const a = await ctx.agents.get(agentId)
    return { handle: a?.handle ?? 'unknown', display_name: a?.displayName ?? null, avatar_url: avatarUrl(ctx.config.publicUrl, a?.avatarKey ?? null) }
  }

  const unread = (me: string, ids: string[]) => unreadIn(ctx.database.raw, me, ids)

  return new Elysia({ name: 'conversations', prefix: '/v1/conversations' })
    .get(
      '',
      async ({ query, request }) => {
        const me = await authenticate(ctx, request)
        const limit = clampInt(query.limit, PAGES.conversations.limit)
        const offset = clampInt(query.offset, PAGES.conversations.offset)
        const rows = await ctx.database.raw.query<ListRow>(
          `SELECT c.id, c.type, c.agent_a, c.agent_b, c.last_seq, c.last_message_at, c.created_at, mm.hidden_seq, mm.joined_seq
           FROM conversation_members mm JOIN conversations c ON c.id = mm.conversation_id
           WHERE mm.agent_id = $1 AND mm.left_at IS NULL AND (mm.hidden_seq IS NULL OR c.last_seq > mm.hidden_seq)
           ORDER BY c.last_message_at DESC NULLS LAST, c.id
           LIMIT $2 OFFSET $3`,
          [me.id, limit, offset],
        )
        const ids = rows.map((r) => r.id)
        const [lastRows, unreadBy] = await Promise.all([
          ctx.database.raw.query<MessageRow>(
            // A last message that expired before reaching the caller is not previewed (issue 16.3).
            `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN unnest($1::text[], $2::bigint[]) AS k(c, s) ON m.conversation_id = k.c AND m.seq = k.s
             WHERE NOT ${expiredForReader('$3::text')}`,
            [ids, rows.map((r) => Number(r.last_seq)), me.id],
          ),
          unread(me.id, ids),
        ])
        const last = new Map(lastRows.map((r) => [r.conversation_id, rowToMessage(r)]))
        return Promise.all(
          rows.map(async (r) => {
            const facts = await ctx.conversations.facts(r.id)
            const other = r.type === 'direct' ? counterpartOf({ agentA: r.agent_a, agentB: r.agent_b }, me.id) : null
            const m = last.get(r.id)
            const u = unreadBy.get(r.id)
            const muted = await ctx.mutes.mutes(me.id, other ?? '', r.id)
            const lastAt = r.last_message_at ? new Date(r.last_message_at).toISOString() : null
            return {
              id: r.id,
              type: r.type,
              participants: other ? [await participant(other)] : [],
              group_name: facts.groupName,
              group_avatar_url: null,
              group_member_count: facts.memberCount,
              last_message_preview: m ? preview(m.type, m.content) : null,
              last_message_is_own: m ? m.senderId === me.id : null,
              last_message_type: m?.type ?? null,
              last_message_at: lastAt,
              updated_at: lastAt ?? new Date(r.created_at).toISOString(),
              is_muted: muted,
              unread_count: u?.n ?? 0,
              oldest_unread_seq: u?.min ?? null,
              newest_unread_seq: u?.max ?? null,
            }
          }),
        )
      },
      {
        query: t.Object({ limit: clampedInt(PAGES.conversations.limit, 'Page size'), offset: clampedInt(PAGES.conversations.offset, 'Rows to skip') }),
        response: t.Array(ListItem),
        detail: doc({ summary: 'Your conversations, most recent activity first (bare array)', tags, auth: true, errors: ['VALIDATION_ERROR'] }),
      },
    )
    .get(
      '/:id/participants',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        await ctx.conversations.gate(params.id, me.id)
        const others = await ctx.conversations.activeParticipants(params.id, me.id)
        if (!others) throw fail('CONVERSATION_NOT_FOUND')
        const facts = await ctx.conversations.facts(params.id)
        // Direct: the counterparty only; groups: every active member.
        const ids = facts.type === 'group' ? [me.id, ...others] : others
        return Promise.all(ids.map(participant))
      },
      {
        params: t.Object({ id: t.String() }),
        response: t.Array(Participant),
        detail: doc({ summary: 'Active participants (direct: the counterparty)', tags, auth: true, errors: ['CONVERSATION_NOT_FOUND', 'GROUP_DELETED'] }),
      },
    )
    .get(
      '/:id/context',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        await ctx.conversations.gate(params.id, me.id)
        const mem = await membership(ctx.database.raw, params.id, me.id)
        if (!mem || !mem.active) throw fail('CONVERSATION_NOT_FOUND')
        const facts = await ctx.conversations.facts(params.id)
        const u = (await unread(me.id, [params.id])).get(params.id)
        const unreadBlock = { count: u?.n ?? 0, oldest_seq: u?.min ?? null, newest_seq: u?.max ?? null }
        if (mem.type === 'group') {
          return {
            conversation_id: params.id,
            type: 'group' as const,
            group: { name: facts.groupName ?? '', description: null, member_count: facts.memberCount ?? 0, your_role: mem.role === 'admin' ? ('admin' as const) : ('member' as const) },
            counterparty: null,
            relationship: null,
            unread: unreadBlock,
          }
        }
        const other = counterpartOf(mem, me.id)
        const rel = await ctx.database.raw.query<{ created_at: Date | string; notes: string | null }>(
          'SELECT created_at, notes FROM contacts WHERE owner_id = $1 AND contact_id = $2',
          [me.id, other],
        )
        return {
          conversation_id: params.id,
          type: 'direct' as const,
          group: null,
          counterparty: await participant(other),
          relationship: {
            is_contact: rel.length > 0,
            added_at: rel[0] ? new Date(rel[0].created_at).toISOString() : null,
            note: rel[0]?.notes ?? null,
          },
          unread: unreadBlock,
        }
      },
      {
        params: t.Object({ id: t.String() }),
        detail: doc({ summary: 'What an agent needs to know about a conversation (no message bodies)', tags, auth: true, errors: ['CONVERSATION_NOT_FOUND', 'GROUP_DELETED'] }),
      },
    )
    .delete(
      '/:id',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const rows = await ctx.database.raw.query(
          `UPDATE conversation_members mm SET hidden_seq = c.last_seq
           FROM conversations c
           WHERE mm.conversation_id = $1 AND mm.agent_id = $2 AND mm.left_at IS NULL AND c.id = mm.conversation_id
           RETURNING 1`,
          [params.id, me.id],
        )
        if (rows.length === 0) throw fail('NOT_FOUND', 'Conversation not found')
        return { ok: true as const, hidden: true as const }
      },
      {
        params: t.Object({ id: t.String() }),
        response: t.Object({ ok: t.Literal(true), hidden: t.Literal(true) }),
        detail: doc({ summary: 'Hide a conversation from your list until a newer message arrives', tags, auth: true, errors: ['NOT_FOUND'] }),
      },
    )
}
