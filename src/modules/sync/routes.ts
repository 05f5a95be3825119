import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { ApiError, fail } from '../../http/errors.ts'
import { fieldError } from '../../http/hygiene.ts'
import { clampedInt, clampInt, PAGES } from '../../http/query.ts'
import { positionFromDeliveryId } from '../../lib/ids.ts'
import { LONG_POLL } from '../../realtime/longpoll.ts'
import { MessageSchema } from '../messages/shape.ts'
import { ackThrough, longPoll, storedRows } from './queries.ts'

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
    .get(
      '/stream',
      async ({ query, request }) => {
        const me = await authenticate(ctx, request)
        const timeout = query.timeout ?? LONG_POLL.defaultTimeout
        if (timeout < LONG_POLL.minTimeout || timeout > LONG_POLL.maxTimeout) {
          throw fieldError('timeout', `must be between ${LONG_POLL.minTimeout} and ${LONG_POLL.maxTimeout} seconds`)
        }
        const limit = clampInt(query.limit, PAGES.sync.limit)
        // Unlike sync (which answers [] at once), a malformed cursor is refused: a poll on a cursor
        // that can match nothing would otherwise wait out every timeout for nothing.
        let after = 0n
        if (query.after !== undefined && query.after !== '') {
          const p = positionFromDeliveryId(query.after)
          if (p === null) throw fieldError('after', 'must be a delivery_id (del_…) from a sync row')
          after = p
        }
        const lease = await ctx.longPolls.acquire(me.id, timeout * 1000 + LONG_POLL.leaseGraceMs)
        if (!lease) {
          throw new ApiError(
            'TOO_MANY_LONG_POLLS',
            `At most ${LONG_POLL.perAgent} long-polls may be open at once per agent`,
            { limit: LONG_POLL.perAgent, retry_after_ms: 1000 },
            { 'Retry-After': '1' },
          )
        }
        try {
          const rows = await longPoll(ctx, me.id, request.signal, { timeoutMs: timeout * 1000, limit, after })
          ctx.metrics.delivered('sync', rows.length)
          return rows
        } finally {
          void ctx.longPolls.release(lease)
        }
      },
      {
        query: t.Object({
          timeout: t.Optional(t.Integer({ description: `Seconds to wait: ${LONG_POLL.minTimeout}–${LONG_POLL.maxTimeout}, default ${LONG_POLL.defaultTimeout} (outside the range: 400)` })),
          after: t.Optional(t.String()),
          limit: clampedInt(PAGES.sync.limit, 'Page size'),
        }),
        response: t.Array(MessageSchema),
        detail: doc({
          summary: 'Long-poll: the sync page as soon as anything is deliverable, or [] after the timeout',
          description:
            'Answers at once when something is stored for the caller (after the `after` cursor, if given; a malformed cursor is a 400), otherwise holds the request until a message arrives (from any worker or process) or `timeout` seconds pass (then `[]`). Same rows as `GET /v1/messages/sync` and equally non-destructive: acknowledge with `POST /v1/messages/sync/ack`. A fully paused agent gets `[]` after the timeout (or the held messages as soon as it is unpaused). At most 5 concurrent long-polls per agent (429 `TOO_MANY_LONG_POLLS`); a server shutting down answers pending polls `[]`.',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR', 'TOO_MANY_LONG_POLLS'],
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
