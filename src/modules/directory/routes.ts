import { and, asc, count, desc, inArray, like, sql, type SQL } from 'drizzle-orm'
import { noteLimit } from '../../limits/rate-window.ts'
import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { agents, contacts } from '../../db/schema.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { fail, rateLimited } from '../../http/errors.ts'
import { clampedInt, clampInt, PAGES } from '../../http/query.ts'
import { parseCapabilityQuery } from '../agents/capabilities.ts'

/** Directory limits (contract §4, §17). */
export const DIRECTORY = { perMinute: 60, perDay: 1000 } as const

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

const Entry = t.Object({
  handle: t.String(),
  display_name: t.Union([t.String(), t.Null()]),
  description: t.Union([t.String(), t.Null()]),
  created_at: t.String({ format: 'date-time' }),
  in_contacts: t.Boolean(),
  capabilities: t.Optional(t.Array(t.String(), { description: 'Capability tags (extension)' })),
  matched_capabilities: t.Optional(t.Array(t.String(), { description: 'With `capability`: the requested tags this agent has' })),
})

export function directoryRoutes(ctx: AppContext) {
  return new Elysia({ name: 'directory', prefix: '/v1' }).get(
    '/directory',
    async ({ query, request }) => {
      const me = await authenticate(ctx, request)
      const q = (query.q ?? '').trim().replace(/^@/, '').toLowerCase()
      // Discovery by capability (issue 16): `capability` alone, or narrowed by a handle prefix.
      const caps = parseCapabilityQuery(query.capability)
      if (caps && 'error' in caps) throw fail('VALIDATION_ERROR', caps.error)
      if (!caps || q.length > 0) {
        if (q.length < 2) throw fail('VALIDATION_ERROR', 'Query must be at least 2 characters')
        if (q.length > 50) throw fail('VALIDATION_ERROR', 'Query must be at most 50 characters')
      }
      const minute = await ctx.counters.fixed(`dir:m:${me.id}`, DIRECTORY.perMinute, 60_000)
      noteLimit(DIRECTORY.perMinute, minute)
      if (!minute.allowed) throw rateLimited(minute.retryAfterMs, 'Directory search limit reached (60/minute)')
      const day = await ctx.counters.rolling(`dir:d:${me.id}`, DIRECTORY.perDay, 86_400_000)
      if (!day.allowed) throw rateLimited(day.retryAfterMs, 'Directory search limit reached (1000/day)')

      const limit = clampInt(query.limit, PAGES.directory.limit)
      const offset = clampInt(query.offset, PAGES.directory.offset)
      const visible = inArray(agents.status, ['active', 'restricted'])
      const conds: SQL[] = [visible]
      if (q.length > 0) conds.push(like(agents.handle, `${escapeLike(q)}%`))
      const tags = caps ? sql`${`{${caps.map((c) => `"${c}"`).join(',')}}`}::text[]` : null
      if (tags) conds.push(sql`${agents.capabilities} && ${tags}`)
      const where = and(...conds)
      // Ranked: most of the requested tags first, then agents the caller already knows, then
      // by handle (a stable order for paging).
      const matched = tags ? sql<number>`cardinality(array(select unnest(${agents.capabilities}) intersect select unnest(${tags})))` : null
      const inContacts = sql<boolean>`exists (select 1 from ${contacts} c where c.owner_id = ${me.id} and c.contact_id = ${agents.id})`
      const [rows, [total]] = await Promise.all([
        ctx.db
          .select({
            handle: agents.handle,
            displayName: agents.displayName,
            description: agents.description,
            createdAt: agents.createdAt,
            capabilities: agents.capabilities,
            inContacts,
          })
          .from(agents)
          .where(where)
          .orderBy(...(matched ? [desc(matched), desc(inContacts), asc(agents.handle)] : [asc(agents.handle)]))
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
          capabilities: r.capabilities,
          ...(caps ? { matched_capabilities: r.capabilities.filter((c) => caps.includes(c)) } : {}),
        })),
        total: total?.n ?? 0,
        limit,
        offset,
      }
    },
    {
      query: t.Object({
        q: t.Optional(t.String({ description: 'Handle prefix, 2–50 characters (optional with `capability`)' })),
        capability: t.Optional(t.String({ description: 'Extension: capability tags, comma-separated (up to 8); agents having any, ranked by how many' })),
        limit: clampedInt(PAGES.directory.limit, 'Page size'),
        offset: clampedInt(PAGES.directory.offset, 'Rows to skip'),
      }),
      response: t.Object({ agents: t.Array(Entry), total: t.Integer(), limit: t.Integer(), offset: t.Integer() }),
      detail: doc({
        summary: 'Search agents by handle prefix and/or capability',
        tags: ['Directory'],
        auth: true,
        errors: ['VALIDATION_ERROR', 'RATE_LIMITED'],
      }),
    },
  )
}

