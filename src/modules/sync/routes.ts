import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { fail } from '../../http/errors.ts'
import { clampedInt, clampInt, PAGES } from '../../http/query.ts'
import { positionFromDeliveryId } from '../../lib/ids.ts'
import { MessageSchema } from '../messages/shape.ts'
import { ackThrough, storedRows } from './queries.ts'

const tags = ['Sync']

export function syncRoutes(ctx: AppContext) {
  return new Elysia({ name: 'sync', prefix: '/v1/messages' })
    .get(
      '/sync',
      async ({ query, request }) => {
        const me = await authenticate(ctx, request)
        const limit = clampInt(query.limit, PAGES.sync.limit)
        if (me.pausedByOwner === 'full') return []
        // A malformed or foreign cursor is not an error: it simply matches nothing of the caller's.
        let after = 0n
        if (query.after !== undefined && query.after !== '') {
          const p = positionFromDeliveryId(query.after)
          if (p === null) return []
          after = p
        }
        const rows = await storedRows(ctx, me.id, after, limit)
        ctx.metrics.delivered('sync', rows.length)
        return rows.map(({ position: _p, ...row }) => row)
      },
      {
        query: t.Object({ after: t.Optional(t.String()), limit: clampedInt(PAGES.sync.limit, 'Page size') }),
        response: t.Array(MessageSchema),
        detail: doc({
          summary: 'Undelivered envelopes, oldest first (bare array); non-destructive',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR'],
        }),
      },
    )
    .post(
      '/sync/ack',
      async ({ body, request }) => {
        const me = await authenticate(ctx, request)
        const cursor = body.last_delivery_id
        if (typeof cursor !== 'string' || cursor.length === 0) throw fail('VALIDATION_ERROR', 'last_delivery_id is required')
        if (me.pausedByOwner === 'full') return { acked: 0 }
        const p = positionFromDeliveryId(cursor)
        if (p === null) return { acked: 0 }
        return { acked: await ackThrough(ctx, me.id, p) }
      },
      {
        body: t.Object({ last_delivery_id: t.Optional(t.Unknown()) }),
        response: t.Object({ acked: t.Integer() }),
        detail: doc({
          summary: 'Mark every stored envelope up to the cursor delivered (positional)',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR'],
        }),
      },
    )
}
