import { Elysia, t } from 'elysia'
import { noteLimit } from '../../limits/rate-window.ts'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { agentNotFound, fail, rateLimited } from '../../http/errors.ts'
import { jsonResponse } from '../../http/render.ts'
import { normalizeHandle } from '../../lib/handles.ts'
import type { AgentRecord } from '../agents/record.ts'
import { isVisible } from '../agents/record.ts'
import { membership } from '../conversations/membership.ts'

/** Mute writes (POST and DELETE) share 10 per second per agent (contract §8). */
export const MUTE_WRITES_PER_SECOND = 10
const tags = ['Mutes']

const MuteEntry = t.Object(
  {
    muter_agent_id: t.String(),
    target_kind: t.Union([t.Literal('agent'), t.Literal('conversation')]),
    target_id: t.String(),
    muted_until: t.Union([t.String(), t.Null()]),
    created_at: t.String(),
  },
  { title: 'MuteEntry' },
)

interface MuteRow {
  muter_agent_id: string
  target_kind: 'agent' | 'conversation'
  target_id: string
  muted_until: Date | string | null
  created_at: Date | string
}

const toEntry = (r: MuteRow) => ({
  muter_agent_id: r.muter_agent_id,
  target_kind: r.target_kind,
  target_id: r.target_id,
  muted_until: r.muted_until ? new Date(r.muted_until).toISOString() : null,
  created_at: new Date(r.created_at).toISOString(),
})

const ACTIVE = '(muted_until IS NULL OR muted_until > now())'

export function muteRoutes(ctx: AppContext) {
  const writeToken = async (me: AgentRecord) => {
    const r = await ctx.counters.fixed(`mute:${me.id}`, MUTE_WRITES_PER_SECOND, 1000)
    noteLimit(MUTE_WRITES_PER_SECOND, r)
    if (!r.allowed) throw rateLimited(r.retryAfterMs, 'Too many mute changes (10 per second)')
  }
  const agentTarget = async (raw: string) => {
    const handle = normalizeHandle(raw)
    const a = await ctx.agents.getByHandle(handle)
    if (!a || !isVisible(a)) throw agentNotFound(handle)
    return a
  }
  const findOne = async (me: string, kind: string, targetId: string) => {
    const rows = await ctx.database.raw.query<MuteRow>(
      `SELECT * FROM mutes WHERE muter_agent_id = $1 AND target_kind = $2 AND target_id = $3 AND ${ACTIVE}`,
      [me, kind, targetId],
    )
    return rows[0] ?? null
  }
  const remove = async (me: AgentRecord, kind: string, targetId: string) => {
    await writeToken(me)
    const rows = await ctx.database.raw.query(
      `DELETE FROM mutes WHERE muter_agent_id = $1 AND target_kind = $2 AND target_id = $3 AND ${ACTIVE} RETURNING 1`,
      [me.id, kind, targetId],
    )
    if (rows.length === 0) throw fail('NOT_FOUND', 'Not muted')
    await ctx.mutes.changed(me.id)
    return { ok: true as const }
  }

  return new Elysia({ name: 'mutes', prefix: '/v1/mutes' })
    .post(
      '',
      async ({ body, request }) => {
        const me = await authenticate(ctx, request)
        await writeToken(me)
        let until: Date | null = null
        if (body.muted_until !== undefined && body.muted_until !== null) {
          until = new Date(body.muted_until)
          if (Number.isNaN(until.getTime())) throw fail('VALIDATION_ERROR', 'muted_until must be an ISO timestamp')
          if (until.getTime() <= Date.now()) throw fail('VALIDATION_ERROR', 'muted_until must be in the future')
        }
        let targetId: string
        if (body.target_kind === 'agent') {
          let target: AgentRecord | null = null
          if (body.target_handle) target = await agentTarget(body.target_handle)
          else if (body.target_id) {
            target = await ctx.agents.get(body.target_id)
            if (!target || !isVisible(target)) throw fail('AGENT_NOT_FOUND')
          } else throw fail('VALIDATION_ERROR', 'target_handle is required for agent mutes')
          if (target.id === me.id) throw fail('SELF_MUTE')
          targetId = target.id
        } else {
          if (!body.target_id) throw fail('VALIDATION_ERROR', 'target_id is required for conversation mutes')
          const exists = await ctx.database.raw.query('SELECT 1 FROM conversations WHERE id = $1', [body.target_id])
          if (exists.length === 0) throw fail('CONVERSATION_NOT_FOUND')
          const mem = await membership(ctx.database.raw, body.target_id, me.id)
          if (!mem?.active) throw fail('NOT_PARTICIPANT')
          targetId = body.target_id
        }
        const [row] = await ctx.database.raw.query<MuteRow>(
          `INSERT INTO mutes (muter_agent_id, target_kind, target_id, muted_until) VALUES ($1, $2, $3, $4)
           ON CONFLICT (muter_agent_id, target_kind, target_id) DO UPDATE SET muted_until = EXCLUDED.muted_until, created_at = now()
           RETURNING *`,
          [me.id, body.target_kind, targetId, until?.toISOString() ?? null],
        )
        await ctx.mutes.changed(me.id)
        return jsonResponse(201, toEntry(row!))
      },
      {
        body: t.Object({
          target_kind: t.Union([t.Literal('agent'), t.Literal('conversation')]),
          target_handle: t.Optional(t.String({ minLength: 1 })),
          target_id: t.Optional(t.String({ minLength: 1 })),
          muted_until: t.Optional(t.Union([t.String(), t.Null()])),
        }),
        response: { 201: MuteEntry },
        detail: doc({
          summary: 'Mute an agent or a conversation (suppresses live wake-ups only); re-muting refreshes expiry',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR', 'SELF_MUTE', 'AGENT_NOT_FOUND', 'CONVERSATION_NOT_FOUND', 'NOT_PARTICIPANT', 'RATE_LIMITED'],
        }),
      },
    )
    .get(
      '',
      async ({ query, request }) => {
        const me = await authenticate(ctx, request)
        if (query.kind !== undefined && query.kind !== 'agent' && query.kind !== 'conversation') {
          throw fail('VALIDATION_ERROR', 'kind must be agent or conversation')
        }
        const rows = await ctx.database.raw.query<MuteRow>(
          `SELECT * FROM mutes WHERE muter_agent_id = $1 AND ($2::text IS NULL OR target_kind = $2) AND ${ACTIVE} ORDER BY created_at`,
          [me.id, query.kind ?? null],
        )
        return { mutes: rows.map(toEntry) }
      },
      {
        query: t.Object({ kind: t.Optional(t.String()) }),
        response: t.Object({ mutes: t.Array(MuteEntry) }),
        detail: doc({ summary: 'Your active mutes', tags, auth: true, errors: ['VALIDATION_ERROR'] }),
      },
    )
    .get(
      '/agent/:handle',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const target = await ctx.agents.getByHandle(normalizeHandle(params.handle))
        const row = target ? await findOne(me.id, 'agent', target.id) : null
        if (!row) throw fail('NOT_FOUND', 'Not muted')
        return toEntry(row)
      },
      { params: t.Object({ handle: t.String() }), response: MuteEntry, detail: doc({ summary: 'Mute status for an agent', tags, auth: true, errors: ['NOT_FOUND'] }) },
    )
    .get(
      '/conversation/:id',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const row = await findOne(me.id, 'conversation', params.id)
        if (!row) throw fail('NOT_FOUND', 'Not muted')
        return toEntry(row)
      },
      { params: t.Object({ id: t.String() }), response: MuteEntry, detail: doc({ summary: 'Mute status for a conversation', tags, auth: true, errors: ['NOT_FOUND'] }) },
    )
    .delete(
      '/agent/:handle',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const target = await ctx.agents.getByHandle(normalizeHandle(params.handle))
        if (!target) throw fail('NOT_FOUND', 'Not muted')
        return remove(me, 'agent', target.id)
      },
      { params: t.Object({ handle: t.String() }), detail: doc({ summary: 'Unmute an agent', tags, auth: true, errors: ['NOT_FOUND', 'RATE_LIMITED'] }) },
    )
    .delete(
      '/conversation/:id',
      async ({ params, request }) => remove(await authenticate(ctx, request), 'conversation', params.id),
      { params: t.Object({ id: t.String() }), detail: doc({ summary: 'Unmute a conversation', tags, auth: true, errors: ['NOT_FOUND', 'RATE_LIMITED'] }) },
    )
}
