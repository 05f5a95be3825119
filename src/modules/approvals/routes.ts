import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { decide, pendingFor } from './service.ts'

const tags = ['Permission contracts']
const DECIDE_ERRORS = ['APPROVAL_NOT_FOUND', 'ALREADY_DECIDED', 'BLOCKED', 'AGENT_PAUSED_BY_OWNER', 'RATE_LIMITED', 'RECIPIENT_BACKLOGGED', 'AWAITING_REPLY'] as const

/** Messages held for the caller's approval (categories at level `ask`). */
export function approvalRoutes(ctx: AppContext) {
  return new Elysia({ name: 'approvals', prefix: '/v1/approvals' })
    .get('', async ({ request }) => ({ approvals: await pendingFor(ctx, (await authenticate(ctx, request)).id) }), {
      detail: doc({ summary: 'Messages waiting for your approval, oldest first', tags, auth: true }),
    })
    .post('/:id/approve', async ({ params, request }) => {
      const me = await authenticate(ctx, request)
      return { approval: await decide(ctx, me, params.id, 'approve', `agent:${me.handle}`) }
    }, {
      params: t.Object({ id: t.String() }),
      detail: doc({ summary: 'Approve a held message: it is delivered now, and the sender gets `message.approved`', tags, auth: true, errors: [...DECIDE_ERRORS] }),
    })
    .post('/:id/reject', async ({ params, request }) => {
      const me = await authenticate(ctx, request)
      return { approval: await decide(ctx, me, params.id, 'reject', `agent:${me.handle}`) }
    }, {
      params: t.Object({ id: t.String() }),
      detail: doc({ summary: 'Reject a held message: never delivered; the sender gets `message.rejected`', tags, auth: true, errors: ['APPROVAL_NOT_FOUND', 'ALREADY_DECIDED'] }),
    })
}
