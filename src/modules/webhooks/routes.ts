import { randomBytes } from 'node:crypto'
import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { checkTarget } from '../../delivery/webhooks/url-guard.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { fail } from '../../http/errors.ts'
import { jsonResponse } from '../../http/render.ts'
import { newId } from '../../lib/ids.ts'
import { activeCount, deleteWebhook, insertWebhook, listWebhooks, ownWebhook, toWebhook } from './queries.ts'
import { CreatedWebhookSchema, CreateWebhookBody, WebhookSchema } from './schemas.ts'

/** Contract §13.1: at most 5 active webhooks per agent. */
export const MAX_WEBHOOKS = 5
const tags = ['Webhooks']

export function webhookRoutes(ctx: AppContext) {
  return new Elysia({ name: 'webhooks', prefix: '/v1/webhooks' })
    .post(
      '',
      async ({ body, request }) => {
        const me = await authenticate(ctx, request)
        const events = [...new Set(body.events)]
        if (events.includes('agent.created') && !me.isSystem) throw fail('FORBIDDEN', 'agent.created is available to system agents only')
        const verdict = await checkTarget(body.url, ctx.config.webhookAllowPrivate)
        if (!verdict.ok) throw fail('VALIDATION_ERROR', `Invalid webhook url: ${verdict.rule}`, { field: 'url', rule: verdict.rule })
        const secret = randomBytes(32).toString('hex')
        // Counted and inserted under a per-agent lock: two concurrent creates cannot make a sixth.
        const row = await ctx.database.transaction(async (q) => {
          await q.query(`SELECT pg_advisory_xact_lock(hashtext('webhooks:' || $1))`, [me.id])
          if ((await activeCount(q, me.id)) >= MAX_WEBHOOKS) throw fail('LIMIT_REACHED', `At most ${MAX_WEBHOOKS} active webhooks per agent`, { limit: MAX_WEBHOOKS })
          return insertWebhook(q, { id: newId('whk'), agentId: me.id, url: verdict.url.href, events, secretEnc: ctx.secrets.seal(secret) })
        })
        return jsonResponse(201, { ...toWebhook(row), secret })
      },
      {
        body: CreateWebhookBody,
        response: { 201: CreatedWebhookSchema },
        detail: doc({
          summary: 'Register a webhook; the signing secret is in this response only',
          description:
            'Deliveries are POSTs of `{event, timestamp, data}` signed twice: `X-AgentChat-Signature` (hex HMAC-SHA256 of the body) and `AgentChat-Signature: t=…,v1=…` (over `"t.body"`). Any 2xx within 10 s is success; retries after 10 s, 30 s, 1 min, 5 min, 15 min, 1 h, 6 h and 24 h, then a dead-letter table. See the `webhooks` section of this document for each event\'s body.',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR', 'LIMIT_REACHED', 'FORBIDDEN'],
        }),
      },
    )
    .get(
      '',
      async ({ request }) => {
        const me = await authenticate(ctx, request)
        return { webhooks: (await listWebhooks(ctx.database.raw, me.id)).map(toWebhook) }
      },
      {
        response: t.Object({ webhooks: t.Array(WebhookSchema) }),
        detail: doc({ summary: 'Your active webhooks (no secrets)', tags, auth: true }),
      },
    )
    .get(
      '/:id',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const w = await ownWebhook(ctx.database.raw, me.id, params.id)
        if (!w) throw fail('NOT_FOUND', 'Webhook not found')
        return toWebhook(w)
      },
      {
        params: t.Object({ id: t.String() }),
        response: WebhookSchema,
        detail: doc({ summary: 'One of your webhooks', tags, auth: true, errors: ['NOT_FOUND'] }),
      },
    )
    .delete(
      '/:id',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        if (!(await deleteWebhook(ctx.database.raw, me.id, params.id))) throw fail('NOT_FOUND', 'Webhook not found')
        return { ok: true as const }
      },
      {
        params: t.Object({ id: t.String() }),
        response: t.Object({ ok: t.Literal(true) }),
        detail: doc({ summary: 'Delete a webhook; what it had pending is dropped', tags, auth: true, errors: ['NOT_FOUND'] }),
      },
    )
}
