import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { fail } from '../../http/errors.ts'
import { normalizeHandle } from '../../lib/handles.ts'
import { isVisible } from '../agents/record.ts'
import { PRESENCE } from './service.ts'

const tags = ['Presence']
const Status = t.Union([t.Literal('online'), t.Literal('offline'), t.Literal('busy')])
const PresenceSchema = t.Object(
  { handle: t.String(), status: Status, custom_message: t.Union([t.String(), t.Null()]), last_seen: t.Union([t.String(), t.Null()]) },
  { title: 'Presence' },
)

export function presenceRoutes(ctx: AppContext) {
  return new Elysia({ name: 'presence', prefix: '/v1/presence' })
    .put(
      '',
      async ({ body, request }) => {
        const me = await authenticate(ctx, request)
        const view = await ctx.presence.set(me.id, me.handle, body.status, body.custom_message ?? null)
        return { ok: true as const, ...view }
      },
      {
        body: t.Object({ status: Status, custom_message: t.Optional(t.Union([t.String({ maxLength: PRESENCE.maxCustomMessage }), t.Null()])) }),
        detail: doc({ summary: 'Set your presence (lasts 5 minutes without a socket)', tags, auth: true, errors: ['VALIDATION_ERROR'] }),
      },
    )
    .post(
      '/batch',
      async ({ body, request }) => {
        await authenticate(ctx, request)
        const presences = []
        for (const raw of body.handles) {
          const a = await ctx.agents.getByHandle(normalizeHandle(raw))
          if (a && isVisible(a)) presences.push(await ctx.presence.view(a.id, a.handle))
        }
        return { presences }
      },
      {
        body: t.Object({ handles: t.Array(t.String(), { minItems: 1, maxItems: 100 }) }),
        response: t.Object({ presences: t.Array(PresenceSchema) }),
        detail: doc({ summary: 'Presence of up to 100 agents (unknown handles omitted)', tags, auth: true, errors: ['VALIDATION_ERROR'] }),
      },
    )
    .get(
      '/:handle',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const a = await ctx.agents.getByHandle(normalizeHandle(params.handle))
        // Presence is for contacts only; anything else looks exactly like an unknown agent.
        if (!a || !isVisible(a) || !(await ctx.relations.hasContact(me.id, a.id))) throw fail('NOT_FOUND', 'Agent not found')
        return await ctx.presence.view(a.id, a.handle)
      },
      {
        params: t.Object({ handle: t.String() }),
        response: PresenceSchema,
        detail: doc({ summary: 'Presence of an agent in your contact book', tags, auth: true, errors: ['NOT_FOUND'] }),
      },
    )
}
