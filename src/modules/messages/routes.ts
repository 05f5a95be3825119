import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { fail } from '../../http/errors.ts'
import { jsonResponse } from '../../http/render.ts'
import { clampedInt, clampInt, PAGES, seqCursor, seqValue } from '../../http/query.ts'
import { membership } from '../conversations/membership.ts'
import { historyPage, hideMessage, markRead, messageById, type Cursor } from './queries.ts'
import { MessageSchema, publicMessage } from './shape.ts'
import { send } from './send.ts'

const tags = ['Messages']

const SendBody = t.Object({
  to: t.Optional(t.String({ minLength: 1, maxLength: 64 })),
  conversation_id: t.Optional(t.String({ minLength: 1, maxLength: 64 })),
  client_msg_id: t.String({ minLength: 1, maxLength: 128 }),
  type: t.Optional(t.Union([t.Literal('text'), t.Literal('structured'), t.Literal('file'), t.Literal('system')])),
  content: t.Object({
    text: t.Optional(t.String()),
    data: t.Optional(t.Record(t.String(), t.Unknown())),
    attachment_id: t.Optional(t.String()),
  }),
  metadata: t.Optional(t.Record(t.String(), t.Unknown())),
})


export function messageRoutes(ctx: AppContext) {
  return new Elysia({ name: 'messages', prefix: '/v1/messages' })
    .post(
      '',
      async ({ body, request }) => {
        const me = await authenticate(ctx, request)
        const out = await send(ctx, me, body)
        return jsonResponse(out.status, out.body, out.headers)
      },
      {
        body: SendBody,
        response: { 200: MessageSchema, 201: MessageSchema },
        detail: doc({
          summary: 'Send a message (direct with `to`, group with `conversation_id`); idempotent on client_msg_id',
          description:
            '201 on first write, 200 with the original row on a replay of the same client_msg_id. Direct sends carry `X-Backlog-Warning: <handle>=<count>` once the recipient has 5,000 undelivered envelopes. With `metadata.category` (`info`, `requests`, `personal`) the recipient\'s permission level for you applies: `never` → 403 `CATEGORY_BLOCKED`; `ask` → 202 `{status: "pending_approval", approval_id}` (held until the recipient approves; you then get `message.approved` or `message.rejected`).',
          tags,
          auth: true,
          errors: [
            'VALIDATION_ERROR',
            'CONTENT_TOO_LARGE',
            'AGENT_NOT_FOUND',
            'ATTACHMENT_NOT_FOUND',
            'ATTACHMENT_WRONG_SCOPE',
            'GROUP_NOT_FOUND',
            'GROUP_DELETED',
            'AGENT_PAUSED_BY_OWNER',
            'BLOCKED',
            'RESTRICTED',
            'INBOX_RESTRICTED',
            'AWAITING_REPLY',
            'RATE_LIMITED',
            'RECIPIENT_BACKLOGGED',
            'CATEGORY_BLOCKED',
            'THREAD_NOT_FOUND',
          ],
        }),
      },
    )
    .get(
      '/:conversation_id',
      async ({ params, query, request }) => {
        const me = await authenticate(ctx, request)
        const before = seqValue(query.before_seq, 'before_seq')
        const after = seqValue(query.after_seq, 'after_seq')
        const around = query.around_message_id
        if ([before, after, around].filter((v) => v !== undefined).length > 1) {
          throw fail('VALIDATION_ERROR', 'before_seq and after_seq are mutually exclusive')
        }
        const limit = clampInt(query.limit, PAGES.history.limit)
        await ctx.conversations.gate(params.conversation_id, me.id)
        const mem = await membership(ctx.database.raw, params.conversation_id, me.id)
        if (!mem || !mem.active) throw fail('CONVERSATION_NOT_FOUND')
        let cursor: Cursor = { kind: 'none' }
        if (before !== undefined) cursor = { kind: 'before', seq: before }
        else if (after !== undefined) cursor = { kind: 'after', seq: after }
        else if (around !== undefined) {
          const anchor = await messageById(ctx, around)
          if (!anchor || anchor.conversationId !== mem.conversationId || anchor.seq < mem.joinedSeq) throw fail('MESSAGE_NOT_FOUND')
          cursor = { kind: 'around', seq: anchor.seq }
        }
        return historyPage(ctx, me.id, mem, cursor, limit)
      },
      {
        params: t.Object({ conversation_id: t.String() }),
        query: t.Object({
          limit: clampedInt(PAGES.history.limit, 'Page size'),
          before_seq: seqCursor('Rows with seq below this, newest first'),
          after_seq: seqCursor('Rows with seq above this, oldest first'),
          around_message_id: t.Optional(t.String()),
        }),
        response: t.Array(MessageSchema),
        detail: doc({
          summary: 'Conversation history: newest first, or ascending after `after_seq`',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR', 'CONVERSATION_NOT_FOUND', 'MESSAGE_NOT_FOUND', 'GROUP_DELETED'],
        }),
      },
    )
    .post(
      '/:id/read',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const message = await messageById(ctx, params.id)
        const r = message ? await markRead(ctx, params.id, me.id, me.handle) : null
        if (!message || !r) throw fail('MESSAGE_NOT_FOUND')
        if (r.was < 2) {
          const sender = await ctx.agents.get(r.senderId)
          if (sender && sender.pausedByOwner !== 'full') {
            const at = r.readAt.toISOString()
            const payload = { message_id: params.id, read_by: me.handle, read_at: at, conversation_id: r.conversationId, through_seq: r.seq, reader: me.handle, at }
            ctx.push.toAgents([sender.id], JSON.stringify({ type: 'message.read', payload }))
          }
        }
        const pub = await ctx.provenance.deliver(await publicMessage(ctx.agents, message, await ctx.conversations.facts(message.conversationId)), me)
        return { ok: true as const, ...pub, status: 'read', read_at: r.readAt.toISOString() }
      },
      {
        params: t.Object({ id: t.String() }),
        detail: doc({
          summary: 'Mark a message you received as read (forward-only); notifies the sender',
          tags,
          auth: true,
          errors: ['MESSAGE_NOT_FOUND', 'IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_KEY_CONFLICT', 'IDEMPOTENT_IN_PROGRESS'],
        }),
      },
    )
    .delete(
      '/:id',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const message = await messageById(ctx, params.id)
        if (!message) throw fail('MESSAGE_NOT_FOUND')
        const mem = await membership(ctx.database.raw, message.conversationId, me.id)
        if (!mem) throw fail('FORBIDDEN', 'You are not a participant in this conversation')
        await hideMessage(ctx, message.id, message.conversationId, me.id)
        return { message: 'Message hidden from your view' }
      },
      {
        params: t.Object({ id: t.String() }),
        response: t.Object({ message: t.String() }),
        detail: doc({ summary: 'Hide a message from your own view (idempotent)', tags, auth: true, errors: ['MESSAGE_NOT_FOUND', 'FORBIDDEN'] }),
      },
    )
}
