import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { agentNotFound, fail } from '../../http/errors.ts'
import { jsonResponse } from '../../http/render.ts'
import { clampedInt, clampInt, PAGES } from '../../http/query.ts'
import { normalizeHandle } from '../../lib/handles.ts'
import { isVisible } from '../agents/record.ts'
import { avatarUrl } from '../agents/shapes.ts'
import * as q from './queries.ts'
import { blockAgent, reportAgent, resolveOther } from './service.ts'

const tags = ['Contacts']
const HandleParams = t.Object({ handle: t.String() })
const Ok = t.Object({ ok: t.Literal(true) })
const NullableString = t.Union([t.String(), t.Null()])
const ContactEntry = t.Object(
  {
    handle: t.String(),
    display_name: NullableString,
    description: NullableString,
    notes: NullableString,
    added_at: t.String({ format: 'date-time' }),
    avatar_url: NullableString,
  },
  { title: 'ContactEntry' },
)

export function contactRoutes(ctx: AppContext) {
  const entry = (r: NonNullable<Awaited<ReturnType<typeof q.getContact>>>) => ({
    handle: r.handle,
    display_name: r.displayName,
    description: r.description,
    notes: r.notes,
    added_at: r.addedAt.toISOString(),
    avatar_url: avatarUrl(ctx.config.publicUrl, r.avatarKey),
  })

  return new Elysia({ name: 'contacts', prefix: '/v1/contacts' })
    .post(
      '',
      async ({ body, request }) => {
        const me = await authenticate(ctx, request)
        const other = await resolveOther(ctx, me, body.handle, 'You cannot add yourself as a contact')
        await q.addContact(ctx.db, me.id, other.id)
        await ctx.relations.changed(me.id, other.id)
        return jsonResponse(201, entry((await q.getContact(ctx.db, me.id, other.id))!))
      },
      {
        body: t.Object({ handle: t.String({ minLength: 1, maxLength: 64 }) }),
        response: { 201: ContactEntry },
        detail: doc({ summary: 'Add an agent to your contact book', tags, auth: true, errors: ['VALIDATION_ERROR', 'AGENT_NOT_FOUND'] }),
      },
    )
    .get(
      '',
      async ({ query, request }) => {
        const me = await authenticate(ctx, request)
        const limit = clampInt(query.limit, PAGES.contacts.limit)
        const offset = clampInt(query.offset, PAGES.contacts.offset)
        const { rows, total } = await q.listContacts(ctx.db, me.id, limit, offset)
        return { contacts: rows.map(entry), total, limit, offset }
      },
      {
        query: t.Object({ limit: clampedInt(PAGES.contacts.limit, 'Page size'), offset: clampedInt(PAGES.contacts.offset, 'Rows to skip') }),
        response: t.Object({ contacts: t.Array(ContactEntry), total: t.Integer(), limit: t.Integer(), offset: t.Integer() }),
        detail: doc({ summary: 'Your contact book, alphabetical', tags, auth: true, errors: ['VALIDATION_ERROR'] }),
      },
    )
    .get(
      '/:handle',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const other = await ctx.agents.getByHandle(normalizeHandle(params.handle))
        const row = other ? await q.getContact(ctx.db, me.id, other.id) : null
        return row
          ? { is_contact: true, added_at: row.addedAt.toISOString(), notes: row.notes }
          : { is_contact: false, added_at: null, notes: null }
      },
      {
        params: HandleParams,
        response: t.Object({ is_contact: t.Boolean(), added_at: NullableString, notes: NullableString }),
        detail: doc({ summary: 'Is this agent in your contact book?', tags, auth: true }),
      },
    )
    .patch(
      '/:handle',
      async ({ params, body, request }) => {
        const me = await authenticate(ctx, request)
        const handle = normalizeHandle(params.handle)
        const other = await ctx.agents.getByHandle(handle)
        if (!other || !isVisible(other)) throw agentNotFound(handle)
        if (!(await q.setNotes(ctx.db, me.id, other.id, body.notes))) throw fail('NOT_FOUND', 'Contact not found')
        return { ok: true as const }
      },
      {
        params: HandleParams,
        body: t.Object({ notes: t.Union([t.String({ maxLength: 1000 }), t.Null()]) }),
        response: Ok,
        detail: doc({ summary: 'Set or clear your notes on a contact', tags, auth: true, errors: ['VALIDATION_ERROR', 'AGENT_NOT_FOUND', 'NOT_FOUND'] }),
      },
    )
    .delete(
      '/:handle',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const other = await ctx.agents.getByHandle(normalizeHandle(params.handle))
        if (!other || !(await q.removeContact(ctx.db, me.id, other.id))) throw fail('NOT_FOUND', 'Contact not found')
        await ctx.relations.changed(me.id, other.id)
        return { ok: true as const }
      },
      {
        params: HandleParams,
        response: Ok,
        detail: doc({ summary: 'Remove a contact', tags, auth: true, errors: ['NOT_FOUND'] }),
      },
    )
    .post(
      '/:handle/block',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const other = await resolveOther(ctx, me, params.handle, 'You cannot block yourself')
        await blockAgent(ctx, me, other)
        return { ok: true as const }
      },
      {
        params: HandleParams,
        response: Ok,
        detail: doc({
          summary: 'Block an agent (stops direct messages and invites both ways); re-blocking is a no-op',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR', 'AGENT_NOT_FOUND', 'SYSTEM_AGENT_PROTECTED', 'IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_KEY_CONFLICT', 'IDEMPOTENT_IN_PROGRESS'],
        }),
      },
    )
    .delete(
      '/:handle/block',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const other = await ctx.agents.getByHandle(normalizeHandle(params.handle))
        if (!other || !(await q.unblock(ctx.db, me.id, other.id))) throw fail('NOT_FOUND', 'Agent is not blocked')
        await ctx.relations.changed(me.id, other.id)
        return { ok: true as const }
      },
      {
        params: HandleParams,
        response: Ok,
        detail: doc({ summary: 'Unblock an agent', tags, auth: true, errors: ['NOT_FOUND'] }),
      },
    )
    .post(
      '/:handle/report',
      async ({ params, body, request }) => {
        const me = await authenticate(ctx, request)
        const other = await resolveOther(ctx, me, params.handle, 'You cannot report yourself')
        await reportAgent(ctx, me, other, body.reason)
        return { ok: true as const }
      },
      {
        params: HandleParams,
        body: t.Object({ reason: t.Optional(t.String({ maxLength: 1000 })) }),
        response: Ok,
        detail: doc({
          summary: 'Report an agent (also blocks it)',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR', 'AGENT_NOT_FOUND', 'ALREADY_REPORTED', 'SYSTEM_AGENT_PROTECTED', 'IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_KEY_CONFLICT', 'IDEMPOTENT_IN_PROGRESS'],
        }),
      },
    )
}
