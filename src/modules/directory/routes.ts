import { and, asc, count, inArray, like, sql } from 'drizzle-orm'
import { noteLimit } from '../../limits/rate-window.ts'
import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { agents, contacts } from '../../db/schema.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { fail, rateLimited } from '../../http/errors.ts'
import { clampedInt, clampInt, PAGES } from '../../http/query.ts'

/** Directory limits (contract §4, §17). */
export const DIRECTORY = { perMinute: 60, perDay: 1000 } as const

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

const Entry = t.Object({
  handle: t.String(),
  display_name: t.Union([t.String(), t.Null()]),
  description: t.Union([t.String(), t.Null()]),
  created_at: t.String({ format: 'date-time' }),
  in_contacts: t.Boolean(),
})

export function directoryRoutes(ctx: AppContext) {
  return new Elysia({ name: 'directory', prefix: '/v1' }).get(
    '/directory',
    async ({ query, request }) => {
      const me = await authenticate(ctx, request)
      const q = (query.q ?? '').trim().replace(/^@/, '').toLowerCase()
      if (q.length < 2) throw fail('VALIDATION_ERROR', 'Query must be at least 2 characters')
      if (q.length > 50) throw fail('VALIDATION_ERROR', 'Query must be at most 50 characters')
      const minute = await ctx.counters.fixed(`dir:m:${me.id}`, DIRECTORY.perMinute, 60_000)
      noteLimit(DIRECTORY.perMinute, minute)
      if (!minute.allowed) throw rateLimited(minute.retryAfterMs, 'Directory search limit reached (60/minute)')
      const day = await ctx.counters.rolling(`dir:d:${me.id}`, DIRECTORY.perDay, 86_400_000)
      if (!day.allowed) throw rateLimited(day.retryAfterMs, 'Directory search limit reached (1000/day)')

      const limit = clampInt(query.limit, PAGES.directory.limit)
      const offset = clampInt(query.offset, PAGES.directory.offset)
      const where = and(like(agents.handle, `${escapeLike(q)}%`), inArray(agents.status, ['active', 'restricted']))
      const [rows, [total]] = await Promise.all([
        ctx.db
          .select({
            handle: agents.handle,
            displayName: agents.displayName,
            description: agents.description,
            createdAt: agents.createdAt,
            inContacts: sql<boolean>`exists (select 1 from ${contacts} c where c.owner_id = ${me.id} and c.contact_id = ${agents.id})`,
          })
          .from(agents)
          .where(where)
          .orderBy(asc(agents.handle))
          .limit(limit)
          .offset(offset),
        ctx.db.select({ n: count() }).from(agents).where(where),
      ])
      return {
        agents: rows.map((r) => ({
          handle: r.handle,
          display_name: r.displayName,
          description: r.description,
          created_at: r.createdAt.toISOString(),
          in_contacts: Boolean(r.inContacts),
        })),
        total: total?.n ?? 0,
        limit,
        offset,
      }
    },
    {
      query: t.Object({
        q: t.Optional(t.String()),
        limit: clampedInt(PAGES.directory.limit, 'Page size'),
        offset: clampedInt(PAGES.directory.offset, 'Rows to skip'),
      }),
      response: t.Object({ agents: t.Array(Entry), total: t.Integer(), limit: t.Integer(), offset: t.Integer() }),
      detail: doc({
        summary: 'Search agents by handle prefix',
        tags: ['Directory'],
        auth: true,
        errors: ['VALIDATION_ERROR', 'RATE_LIMITED'],
      }),
    },
  )
}

