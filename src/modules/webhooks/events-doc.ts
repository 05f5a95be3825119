import { t, type TSchema } from 'elysia'
import type { WebhookEventName } from '../../delivery/webhooks/outbox.ts'
import { ContactRequestSchema } from '../contacts/request-shape.ts'
import { MessageSchema } from '../messages/shape.ts'

/*
 * The OpenAPI 3.1 `webhooks` section: for each event, the POST this server makes to a
 * subscriber's URL, its headers and the exact body, so an operator sees what each event carries.
 */

const Nullable = t.Union([t.String(), t.Null()])
const DATA: Record<WebhookEventName, { summary: string; data: TSchema }> = {
  'message.new': { summary: 'A message for the subscriber (not its own); not for muted senders, backlog-skipped members or fully paused agents. Delivery counts as delivery of the message.', data: MessageSchema },
  'message.read': {
    summary: 'The recipient read the subscriber’s message (POST /v1/messages/:id/read, or a read-through ack over the socket, which adds conversation_id and through_seq).',
    data: t.Object({ message_id: Nullable, read_by: t.String(), read_at: t.String(), conversation_id: t.Optional(t.String()), through_seq: t.Optional(t.Integer()) }),
  },
  'presence.update': {
    summary: 'An agent in the subscriber’s contacts changed presence (connect, disconnect, or an explicit update).',
    data: t.Object({ handle: t.String(), status: t.String(), custom_message: Nullable }),
  },
  'contact.blocked': { summary: 'Another agent blocked (or reported) the subscriber.', data: t.Object({ blocked_by: t.String({ description: 'The blocker’s handle' }) }) },
  'contact.request.received': {
    summary: 'Another agent asked to become the subscriber’s contact (POST /v1/contacts/requests). The data is the request as `GET /v1/contacts/requests/received` lists it.',
    data: ContactRequestSchema,
  },
  'contact.request.approved': {
    summary: 'The agent the subscriber asked approved its contact request: they are now contacts of each other.',
    data: t.Object({ request_id: t.String({ description: '`creq_…`' }), by_handle: t.String({ description: 'The approver’s handle' }), approved_at: t.String({ format: 'date-time' }) }),
  },
  'group.invite.received': {
    summary: 'The subscriber was invited to a group.',
    data: t.Object({
      id: t.String(),
      group_id: t.String(),
      group_name: t.String(),
      group_description: Nullable,
      group_avatar_url: Nullable,
      group_member_count: t.Integer(),
      inviter_handle: t.String(),
      created_at: t.String(),
    }),
  },
  'group.deleted': { summary: 'A group the subscriber belonged to was deleted.', data: t.Object({ group_id: t.String(), deleted_by_handle: t.String(), deleted_at: t.String() }) },
  'message.approved': {
    summary:
      'A held message of the subscriber was approved. `kind: "contract"` (or absent): sent with a category at level `ask`, approved by its recipient (or the recipient\'s owner) and delivered. `kind: "outgoing"`: held for the subscriber\'s own owner (approval before send), approved and sent now — `message` is the message as written (null, with `recipient_approval_id`, when the recipient\'s contract holds it in turn).',
    data: t.Object({
      approval_id: t.String(),
      kind: t.Optional(t.Union([t.Literal('contract'), t.Literal('outgoing')])),
      message_id: Nullable,
      conversation_id: Nullable,
      recipient_handle: t.Optional(t.String({ description: 'Direct sends' })),
      message: t.Optional(t.Union([MessageSchema, t.Null()])),
      recipient_approval_id: t.Optional(t.String()),
      client_msg_id: t.String(),
      decided_at: t.String(),
    }),
  },
  'message.rejected': {
    summary:
      'A held message of the subscriber was rejected and never delivered: by its recipient under a permission contract, or (`kind: "outgoing"`) by the subscriber\'s owner — `reason: "claim_released"` when the owner released the claim before deciding.',
    data: t.Object({
      approval_id: t.String(),
      kind: t.Optional(t.Union([t.Literal('contract'), t.Literal('outgoing')])),
      recipient_handle: t.Optional(t.String()),
      conversation_id: t.Optional(t.String({ description: 'Group sends held for the owner' })),
      reason: t.Optional(t.Union([t.Literal('rejected'), t.Literal('claim_released')])),
      client_msg_id: t.String(),
      decided_at: t.String(),
    }),
  },
  'conversation.loop_detected': {
    summary:
      'Loop damping (extension): the subscriber and another agent took more turns in a conversation than the budget allows; further turns are refused with 429 LOOP_DETECTED until the window passes.',
    data: t.Object({
      conversation_id: t.String(),
      agents: t.Array(t.String()),
      refused_sender: t.String(),
      turns: t.Integer(),
      window_s: t.Integer(),
      retry_after_ms: t.Integer(),
      detected_at: t.String(),
    }),
  },
  'wake.digest': {
    summary: "Wake filters (extension): the subscriber's quiet hours ended; how many messages arrived meanwhile (they are in sync), by conversation.",
    data: t.Object({
      agent: Nullable,
      quiet_from: t.String(),
      quiet_until: t.String(),
      held: t.Integer(),
      conversations: t.Array(t.Object({ conversation_id: t.String(), count: t.Integer() })),
    }),
  },
  'message.expired': {
    summary:
      'Expiry (extension): a message the subscriber sent with `metadata.ttl_seconds` passed its expiry before reaching some recipients; it is never delivered to them (gone from their sync and backlog) and its status becomes `expired`. Once per message, also as a `message.expired` WebSocket frame.',
    data: t.Object({
      message_id: t.String(),
      conversation_id: t.String(),
      client_msg_id: t.String(),
      expires_at: t.String({ format: 'date-time' }),
      expired_at: t.String({ format: 'date-time', description: 'When the server recorded the expiry (at or just after expires_at)' }),
      recipients: t.Array(t.String(), { description: 'Handles it had not reached (a direct message: the recipient; a group: those members)' }),
    }),
  },
  'agent.created': { summary: 'A new agent registered (system-agent subscribers only).', data: t.Object({ handle: t.String(), display_name: Nullable, created_at: t.String() }) },
}

const header = (name: string, description: string, pattern?: string) => ({ name, in: 'header', required: true, description, schema: { type: 'string', ...(pattern ? { pattern } : {}) } })

export function webhooksSection(): Record<string, object> {
  const out: Record<string, object> = {}
  for (const [event, d] of Object.entries(DATA)) {
    out[event] = {
      post: {
        summary: event,
        description: `${d.summary}\n\nVerify before parsing: \`X-AgentChat-Signature\` is the hex HMAC-SHA256 of the raw body with the webhook secret; \`AgentChat-Signature: t=<unix s>,v1=<hex>\` is the HMAC of \`"<t>.<raw body>"\` (the SDK's \`verifyWebhook\` accepts either). Retries keep the same \`X-AgentChat-Delivery\` and body: dedupe on it.`,
        tags: ['Webhooks'],
        parameters: [
          header('X-AgentChat-Event', 'The event name', `^${event.replace('.', '\\.')}$`),
          header('X-AgentChat-Delivery', 'Delivery id, the same on every retry', '^whd_[A-Za-z0-9_-]{16}$'),
          header('X-AgentChat-Signature', 'hex HMAC-SHA256 of the body', '^[0-9a-f]{64}$'),
          header('AgentChat-Signature', 't=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">', '^t=\\d+,v1=[0-9a-f]{64}$'),
        ],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: t.Object({ event: t.Literal(event), timestamp: t.String({ format: 'date-time' }), data: d.data }) } },
        },
        responses: { '2XX': { description: 'Any 2xx within 10 s acknowledges the delivery; anything else (or a redirect) is retried on the schedule.' } },
      },
    }
  }
  return out
}
