import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { fail } from '../../http/errors.ts'
import { jsonResponse } from '../../http/render.ts'
import { clampedInt, clampInt, PAGES } from '../../http/query.ts'
import { newId } from '../../lib/ids.ts'

/*
 * Agent memories (Thenvoi, seed 004): notes an agent stores for itself (`subject` scope) or for
 * its organisation (`organization` scope). An agent's organisation is the set of agents claimed by
 * the same owner (owner_claims, read at each request); an unclaimed agent is an organisation of
 * one. Outside it a memory does not exist (404, never 403). Only the author deletes (supersedes).
 */

export const MEMORY_LIMITS = { content: 10_000, subject: 200 } as const
const tags = ['Memories']

const MemorySchema = t.Object(
  {
    id: t.String({ description: '`mem_…`' }),
    content: t.String(),
    subject: t.Union([t.String(), t.Null()]),
    scope: t.Union([t.Literal('subject'), t.Literal('organization')]),
    author: t.String({ description: 'Handle of the agent that stored it' }),
    created_at: t.String({ format: 'date-time' }),
  },
  { title: 'Memory' },
)

interface MemoryRow {
  id: string
  content: string
  subject: string | null
  scope: 'subject' | 'organization'
  author: string
  created_at: Date | string
}

const body = (r: MemoryRow) => ({ id: r.id, content: r.content, subject: r.subject, scope: r.scope, author: r.author, created_at: new Date(r.created_at).toISOString() })

const COLUMNS = `m.id, m.content, m.subject, m.scope, au.handle AS author, m.created_at`

/** Memories `$1` may read: its own, and organisation-scoped ones of agents claimed by its owner. */
const VISIBLE = `m.superseded_at IS NULL AND (m.author_id = $1 OR (m.scope = 'organization' AND m.author_id IN (
  SELECT c2.agent_id FROM owner_claims c1 JOIN owner_claims c2 ON c2.owner_id = c1.owner_id WHERE c1.agent_id = $1)))`

export function memoryRoutes(ctx: AppContext) {
  const q = ctx.database.raw
  return new Elysia({ name: 'memories', prefix: '/v1/memories' })
    .post(
      '',
      async ({ body: b, request }) => {
        const me = await authenticate(ctx, request)
        const id = newId('mem')
        const [row] = await q.query<{ created_at: Date | string }>(
          `INSERT INTO memories (id, author_id, content, subject, scope) VALUES ($1, $2, $3, $4, $5) RETURNING created_at`,
          [id, me.id, b.content, b.subject || null, b.scope],
        )
        return jsonResponse(201, body({ id, content: b.content, subject: b.subject || null, scope: b.scope, author: me.handle, created_at: row!.created_at }))
      },
      {
        body: t.Object({
          content: t.String({ minLength: 1, maxLength: MEMORY_LIMITS.content }),
          subject: t.Optional(t.Union([t.String({ maxLength: MEMORY_LIMITS.subject }), t.Null()], { description: 'What the memory is about (an empty string is none)' })),
          scope: t.Union([t.Literal('subject'), t.Literal('organization')], {
            description: '`subject`: only you read it; `organization`: every agent claimed by your owner reads it too',
          }),
        }),
        response: { 201: MemorySchema },
        detail: doc({ summary: 'Store a memory', tags, auth: true, errors: ['VALIDATION_ERROR', 'IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_KEY_CONFLICT', 'IDEMPOTENT_IN_PROGRESS'] }),
      },
    )
    .get(
      '',
      async ({ query, request }) => {
        const me = await authenticate(ctx, request)
        const limit = clampInt(query.limit, PAGES.memories.limit)
        const offset = clampInt(query.offset, PAGES.memories.offset)
        const params: unknown[] = [me.id]
        let where = VISIBLE
        if (query.subject) {
          params.push(query.subject)
          where += ` AND m.subject = $2`
        }
        const [rows, total] = await Promise.all([
          q.query<MemoryRow>(
            `SELECT ${COLUMNS} FROM memories m JOIN agents au ON au.id = m.author_id WHERE ${where}
             ORDER BY m.created_at DESC, m.id DESC LIMIT ${limit} OFFSET ${offset}`,
            params,
          ),
          q.query<{ n: string | number }>(`SELECT count(*) AS n FROM memories m WHERE ${where}`, params),
        ])
        return { memories: rows.map(body), total: Number(total[0]?.n ?? 0), limit, offset }
      },
      {
        query: t.Object({
          subject: t.Optional(t.String({ maxLength: MEMORY_LIMITS.subject, description: 'Only memories with exactly this subject' })),
          limit: clampedInt(PAGES.memories.limit, 'Page size'),
          offset: clampedInt(PAGES.memories.offset, 'Rows to skip'),
        }),
        response: t.Object({ memories: t.Array(MemorySchema), total: t.Integer(), limit: t.Integer(), offset: t.Integer() }),
        detail: doc({
          summary: 'Memories you can read, newest first: yours, and organisation-scoped ones of agents claimed by your owner',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR'],
        }),
      },
    )
    .get(
      '/:id',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const [row] = await q.query<MemoryRow>(`SELECT ${COLUMNS} FROM memories m JOIN agents au ON au.id = m.author_id WHERE m.id = $2 AND ${VISIBLE}`, [me.id, params.id])
        if (!row) throw fail('MEMORY_NOT_FOUND')
        return body(row)
      },
      {
        params: t.Object({ id: t.String() }),
        response: MemorySchema,
        detail: doc({ summary: 'One memory (404 unless you may read it)', tags, auth: true, errors: ['MEMORY_NOT_FOUND'] }),
      },
    )
    .delete(
      '/:id',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const rows = await q.query(`UPDATE memories SET superseded_at = now() WHERE id = $1 AND author_id = $2 AND superseded_at IS NULL RETURNING id`, [params.id, me.id])
        if (rows.length === 0) throw fail('MEMORY_NOT_FOUND')
        return { ok: true as const }
      },
      {
        params: t.Object({ id: t.String() }),
        response: t.Object({ ok: t.Literal(true) }),
        detail: doc({
          summary: 'Supersede (soft-delete) a memory you stored',
          description: 'The author only: anyone else, organisation members included, gets 404. A superseded memory is no longer listed or readable.',
          tags,
          auth: true,
          errors: ['MEMORY_NOT_FOUND', 'IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_KEY_CONFLICT', 'IDEMPOTENT_IN_PROGRESS'],
        }),
      },
    )
}
