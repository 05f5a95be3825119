import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { fail } from '../../http/errors.ts'
import { clampedInt, clampInt, seqCursor, seqValue } from '../../http/query.ts'
import { expiredForReader } from '../../delivery/cursors.ts'
import { membership } from '../conversations/membership.ts'
import { MESSAGE_COLUMNS, MessageSchema, publicMessage, rowToMessage, type MessageRow } from '../messages/shape.ts'

const tags = ['Threads']
const PAGE = { min: 1, max: 200, default: 50 }

const ThreadSchema = t.Object(
  { thread_id: t.String(), subject: t.Union([t.String(), t.Null()]), message_count: t.Integer(), last_activity_at: t.String(), started_at: t.String() },
  { title: 'Thread' },
)

/** Threads of a conversation (seed 001): derived from the messages carrying `metadata.thread_id`. */
export function threadRoutes(ctx: AppContext) {
  /** The caller's view of the conversation: a participant (now or formerly), from its join point, minus what it hid. */
  const view = async (request: Request, conversationId: string) => {
    const me = await authenticate(ctx, request)
    await ctx.conversations.gate(conversationId, me.id)
    const mem = await membership(ctx.database.raw, conversationId, me.id)
    if (!mem) throw fail('CONVERSATION_NOT_FOUND')
    return { me, mem, from: Math.max(mem.joinedSeq, (mem.hiddenSeq ?? 0) + 1) }
  }
  return new Elysia({ name: 'threads', prefix: '/v1/conversations' })
    .get(
      '/:id/threads',
      async ({ params, request }) => {
        const { me, from } = await view(request, params.id)
        const rows = await ctx.database.raw.query<{ tid: string; subject: string | null; n: number; last_at: Date | string; first_at: Date | string }>(
          `SELECT (m.metadata->>'thread_id') AS tid, count(*)::int AS n, max(m.created_at) AS last_at, min(m.created_at) AS first_at,
                  (array_agg(m.metadata->>'thread_subject' ORDER BY m.seq) FILTER (WHERE m.metadata->>'thread_subject' IS NOT NULL))[1] AS subject
           FROM messages m
           WHERE m.conversation_id = $1 AND (m.metadata->>'thread_id') IS NOT NULL AND m.seq >= $2
             AND NOT EXISTS (SELECT 1 FROM message_hides h WHERE h.agent_id = $3 AND h.message_id = m.id)
           GROUP BY 1 ORDER BY max(m.created_at) DESC, 1 LIMIT 200`,
          [params.id, from, me.id],
        )
        return {
          threads: rows.map((r) => ({
            thread_id: r.tid,
            subject: r.subject,
            message_count: Number(r.n),
            last_activity_at: new Date(r.last_at).toISOString(),
            started_at: new Date(r.first_at).toISOString(),
          })),
        }
      },
      {
        params: t.Object({ id: t.String() }),
        response: t.Object({ threads: t.Array(ThreadSchema) }),
        detail: doc({
          summary: "A conversation's threads, most recent activity first",
          description: 'A message with `metadata.thread_subject` (and no `thread_id`) opens a thread and comes back with `metadata.thread_id` (`thr_…`); replies carry that `thread_id` (an unknown one is 404 `THREAD_NOT_FOUND`).',
          tags,
          auth: true,
          errors: ['CONVERSATION_NOT_FOUND', 'GROUP_DELETED'],
        }),
      },
    )
    .get(
      '/:id/threads/:thread_id',
      async ({ params, query, request }) => {
        const { me, from } = await view(request, params.id)
        const limit = clampInt(query.limit, PAGE)
        const after = seqValue(query.after_seq, 'after_seq') ?? 0
        const rows = await ctx.database.raw.query<MessageRow>(
          `SELECT ${MESSAGE_COLUMNS} FROM messages m
           WHERE m.conversation_id = $1 AND (m.metadata->>'thread_id') = $2 AND m.seq >= $3 AND m.seq > $4
             AND NOT EXISTS (SELECT 1 FROM message_hides h WHERE h.agent_id = $5 AND h.message_id = m.id)
             AND NOT ${expiredForReader('$5::text')}
           ORDER BY m.seq LIMIT $6`,
          [params.id, params.thread_id, from, after, me.id, limit],
        )
        if (rows.length === 0 && after === 0) throw fail('THREAD_NOT_FOUND')
        const facts = await ctx.conversations.facts(params.id)
        const messages = await Promise.all(
          rows.map(async (r) => {
            const pub = await publicMessage(ctx.agents, rowToMessage(r), facts)
            return r.sender_id === me.id ? pub : ctx.provenance.deliver(pub, me)
          }),
        )
        return { thread_id: params.thread_id, messages }
      },
      {
        params: t.Object({ id: t.String(), thread_id: t.String() }),
        query: t.Object({ limit: clampedInt(PAGE, 'Page size'), after_seq: seqCursor('Messages after this seq') }),
        response: t.Object({ thread_id: t.String(), messages: t.Array(MessageSchema) }),
        detail: doc({ summary: "A thread's messages in seq order", tags, auth: true, errors: ['CONVERSATION_NOT_FOUND', 'THREAD_NOT_FOUND', 'GROUP_DELETED', 'VALIDATION_ERROR'] }),
      },
    )
}
