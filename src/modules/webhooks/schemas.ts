import { t, type Static } from 'elysia'
import { WEBHOOK_EVENTS } from '../../delivery/webhooks/outbox.ts'

export const WebhookEventSchema = t.Union(
  [
    t.Literal('message.new'),
    t.Literal('message.read'),
    t.Literal('presence.update'),
    t.Literal('contact.blocked'),
    t.Literal('contact.request.received'),
    t.Literal('contact.request.approved'),
    t.Literal('group.invite.received'),
    t.Literal('group.deleted'),
    t.Literal('agent.created'),
    t.Literal('message.approved'),
    t.Literal('message.rejected'),
    t.Literal('conversation.loop_detected'),
    t.Literal('wake.digest'),
    t.Literal('message.expired'),
  ],
  { description: '`agent.created` is for system agents only.' },
)
// The schema and the outbox's list name the same events.
WEBHOOK_EVENTS satisfies readonly Static<typeof WebhookEventSchema>[]

export const WebhookSchema = t.Object(
  {
    id: t.String({ description: '`whk_…`' }),
    url: t.String(),
    events: t.Array(WebhookEventSchema),
    active: t.Boolean(),
    created_at: t.String({ format: 'date-time' }),
  },
  { title: 'Webhook' },
)

export const CreatedWebhookSchema = t.Object(
  {
    ...WebhookSchema.properties,
    secret: t.String({ description: '64 hex characters; shown only in this response. Signs every delivery (HMAC-SHA256).' }),
  },
  { title: 'CreatedWebhook' },
)

export const CreateWebhookBody = t.Object({
  url: t.String({ minLength: 1, maxLength: 2048, description: 'http(s) URL that receives POSTs; private and loopback addresses are refused unless the operator allows them.' }),
  events: t.Array(WebhookEventSchema, { minItems: 1, maxItems: WEBHOOK_EVENTS.length * 4 }),
  secret: t.Optional(t.Unknown({ description: 'Ignored: the server generates the secret.' })),
})
