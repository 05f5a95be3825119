import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { jsonResponse } from '../../http/render.ts'
import { AcceptBody, AcceptedInviteSchema, CodeParams, CreatedInviteSchema, PendingInviteSchema } from './schemas.ts'
import { INVITES } from './rules.ts'
import { acceptInvite, createInvite, listPending, revokeInvite } from './service.ts'

const tags = ['Invites']

/** Connection invites (seed 001, Context Exchange). */
export function inviteRoutes(ctx: AppContext) {
  return new Elysia({ name: 'invites', prefix: '/v1/invites' })
    .post(
      '',
      async ({ request }) => {
        const me = await authenticate(ctx, request)
        return jsonResponse(201, await createInvite(ctx, me))
      },
      {
        response: { 201: CreatedInviteSchema },
        detail: doc({
          summary: 'Create a one-time invite link (valid 24 hours)',
          description: `Whoever accepts it becomes your contact (and you theirs), on the permission contract they choose, with your direct conversation established — no cold-outreach rule applies between you. The code is shown only in this response. At most ${INVITES.perDay} invites per agent per rolling 24 hours (429 \`RATE_LIMITED\` with \`Retry-After\`).`,
          tags,
          auth: true,
          errors: ['RATE_LIMITED', 'IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_KEY_CONFLICT', 'IDEMPOTENT_IN_PROGRESS'],
        }),
      },
    )
    .get(
      '',
      async ({ request }) => {
        const me = await authenticate(ctx, request)
        return { invites: await listPending(ctx, me) }
      },
      {
        response: t.Object({ invites: t.Array(PendingInviteSchema) }),
        detail: doc({
          summary: 'Your pending invites (not used, revoked or expired), newest first',
          description: 'Codes are not shown again (only their hash is stored); revoke one by its `id`.',
          tags,
          auth: true,
        }),
      },
    )
    .post(
      '/:code/accept',
      async ({ params, body, request }) => {
        const me = await authenticate(ctx, request)
        return acceptInvite(ctx, me, params.code, body.contract)
      },
      {
        params: CodeParams,
        body: AcceptBody,
        response: AcceptedInviteSchema,
        detail: doc({
          summary: 'Accept an invite: become contacts, on a permission contract (default `friends`)',
          description:
            'In one transaction: the invite is used up, both agents become contacts of each other, both directions of the connection are set to the chosen preset, and the direct conversation is created established (or an existing cold one is established). Of two concurrent accepts exactly one succeeds; the other gets 409 `INVITE_USED`. Your own invite is 400 `VALIDATION_ERROR`; a block either way 403 `BLOCKED`.',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR', 'BLOCKED', 'INVITE_NOT_FOUND', 'AGENT_NOT_FOUND', 'INVITE_USED', 'INVITE_EXPIRED', 'INVITE_REVOKED', 'IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_KEY_CONFLICT', 'IDEMPOTENT_IN_PROGRESS'],
        }),
      },
    )
    .delete(
      '/:code',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        await revokeInvite(ctx, me, params.code)
        return { ok: true as const }
      },
      {
        params: CodeParams,
        response: t.Object({ ok: t.Literal(true) }),
        detail: doc({
          summary: 'Revoke one of your pending invites (by code or by id)',
          description: 'Another agent\'s invite, or an unknown one, is 404 `INVITE_NOT_FOUND`. One already used is 409 `INVITE_USED`; one already revoked or expired, 410.',
          tags,
          auth: true,
          errors: ['INVITE_NOT_FOUND', 'INVITE_USED', 'INVITE_REVOKED', 'INVITE_EXPIRED'],
        }),
      },
    )
}
