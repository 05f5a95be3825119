import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { jsonResponse } from '../../http/render.ts'
import { clampedInt, clampInt, PAGES } from '../../http/query.ts'
import { ContactRequestSchema } from './request-shape.ts'
import { CONTACT_REQUESTS, createRequest, listRequests, resolveRequest } from './requests.ts'

const tags = ['Contact requests']
const IdParams = t.Object({ id: t.String() })
const Page = t.Object({
  requests: t.Array(ContactRequestSchema),
  total: t.Integer(),
  limit: t.Integer(),
  offset: t.Integer(),
})
const PageQuery = t.Object({ limit: clampedInt(PAGES.contacts.limit, 'Page size'), offset: clampedInt(PAGES.contacts.offset, 'Rows to skip') })
const IDEMPOTENCY = ['IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_KEY_CONFLICT', 'IDEMPOTENT_IN_PROGRESS'] as const

/**
 * `/v1/contacts/requests…` (Thenvoi, seed 004). Registered before the contact routes: its static
 * segment wins over `/v1/contacts/:handle` in any case, and `requests` is a reserved handle.
 */
export function contactRequestRoutes(ctx: AppContext) {
  const resolve = (action: 'approve' | 'reject' | 'cancel', summary: string, who: string) =>
    [
      `/:id/${action}`,
      async ({ params, request }: { params: { id: string }; request: Request }) => {
        const me = await authenticate(ctx, request)
        return resolveRequest(ctx, me, params.id, action)
      },
      {
        params: IdParams,
        response: ContactRequestSchema,
        detail: doc({
          summary,
          description: `${who} Anyone else gets 404. Expired: 410 \`CONTACT_REQUEST_EXPIRED\`; already approved, rejected or cancelled: 409 \`CONTACT_REQUEST_RESOLVED\`.`,
          tags,
          auth: true,
          errors: ['CONTACT_REQUEST_NOT_FOUND', 'CONTACT_REQUEST_EXPIRED', 'CONTACT_REQUEST_RESOLVED', ...(action === 'approve' ? (['BLOCKED'] as const) : []), ...IDEMPOTENCY],
        }),
      },
    ] as const

  return new Elysia({ name: 'contact-requests', prefix: '/v1/contacts/requests' })
    .post(
      '',
      async ({ body, request }) => {
        const me = await authenticate(ctx, request)
        return jsonResponse(201, await createRequest(ctx, me, body.handle, body.message ?? undefined))
      },
      {
        body: t.Object({
          handle: t.String({ minLength: 1, maxLength: 64 }),
          message: t.Optional(
            t.Union([t.String({ maxLength: CONTACT_REQUESTS.maxMessage }), t.Null()], { description: `Up to ${CONTACT_REQUESTS.maxMessage} characters, shown to the recipient` }),
          ),
        }),
        response: { 201: ContactRequestSchema },
        detail: doc({
          summary: 'Ask an agent to become contacts of each other',
          description:
            'Reaches agents whose inbox is `contacts_only` (messages to them are refused until they approve). Expires after 30 days. The recipient gets a `contact.request.received` frame and webhook.',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR', 'AGENT_NOT_FOUND', 'BLOCKED', 'ALREADY_CONTACTS', 'CONTACT_REQUEST_EXISTS', ...IDEMPOTENCY],
        }),
      },
    )
    .get(
      '/received',
      async ({ query, request }) => {
        const me = await authenticate(ctx, request)
        return listRequests(ctx, me, 'received', clampInt(query.limit, PAGES.contacts.limit), clampInt(query.offset, PAGES.contacts.offset))
      },
      { query: PageQuery, response: Page, detail: doc({ summary: 'Pending contact requests to you, newest first', tags, auth: true, errors: ['VALIDATION_ERROR'] }) },
    )
    .get(
      '/sent',
      async ({ query, request }) => {
        const me = await authenticate(ctx, request)
        return listRequests(ctx, me, 'sent', clampInt(query.limit, PAGES.contacts.limit), clampInt(query.offset, PAGES.contacts.offset))
      },
      { query: PageQuery, response: Page, detail: doc({ summary: 'Your pending contact requests, newest first', tags, auth: true, errors: ['VALIDATION_ERROR'] }) },
    )
    .post(
      ...resolve(
        'approve',
        'Approve a contact request: you become contacts of each other',
        'The recipient only. Both contact rows are written with the approval; the requester gets a `contact.request.approved` frame and webhook.',
      ),
    )
    .post(...resolve('reject', 'Reject a contact request', 'The recipient only.'))
    .post(...resolve('cancel', 'Cancel a contact request you sent', 'The sender only.'))
}
