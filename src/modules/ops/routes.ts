import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { doc } from '../../http/docs.ts'
import { fail } from '../../http/errors.ts'
import { operatorBearer, requireOperator } from '../../http/operator-auth.ts'
import { normalizeHandle } from '../../lib/handles.ts'
import { replaceKey } from '../registration/service.ts'
import { ESCALATION_STATUSES, escalationBody, type EscalationRow } from './escalations.ts'

const tags = ['Internal (operators)']
const AUTH = 'Bearer `OPS_ADMIN_TOKEN`; 401 `OPS_AUTH_REQUIRED` when missing or wrong, 503 while the token is unset.'
/** Contract §16.4: ten system-key rotations per hour, process-wide (Redis when present). */
export const ROTATIONS = { limit: 10, windowMs: 3_600_000 } as const

const Status = t.Union(ESCALATION_STATUSES.map((s) => t.Literal(s)))

const SELECT = `SELECT e.id, e.agent_id, a.handle, e.status, e.subject, e.body, e.resolution_note, e.resolved_by, e.created_at, e.updated_at
  FROM support_escalations e LEFT JOIN agents a ON a.id = e.agent_id`

/** The internal ops routes of contract §16.4. */
export function opsRoutes(ctx: AppContext) {
  const ops = (req: Request) => requireOperator(ctx.config.opsAdminToken, operatorBearer(req))
  return new Elysia({ name: 'ops', prefix: '/internal' })
    .post(
      '/rotate-system-agent-key',
      async ({ body, request }) => {
        ops(request)
        const r = await ctx.counters.fixed('ops:rotate-system-key', ROTATIONS.limit, ROTATIONS.windowMs)
        // The contract pins Retry-After to the whole window (3600), not the time left in it.
        if (!r.allowed) throw fail('RATE_LIMITED', 'Too many system key rotations this hour', { retry_after_ms: r.retryAfterMs }, { 'Retry-After': '3600' })
        const agent = await ctx.agents.getByHandle(normalizeHandle(body.handle))
        if (!agent || !agent.isSystem || agent.status === 'deleted') throw fail('NOT_A_SYSTEM_AGENT')
        const k = await replaceKey(ctx, agent.id, 'operator')
        return { handle: k.handle, api_key: k.apiKey }
      },
      {
        body: t.Object({ handle: t.String({ minLength: 1, maxLength: 64 }) }),
        response: t.Object({ handle: t.String(), api_key: t.String() }),
        detail: doc({ summary: "Mint a new key for a system agent (the old one stops working, its sockets close)", description: AUTH, tags, errors: ['VALIDATION_ERROR', 'OPS_AUTH_REQUIRED', 'NOT_A_SYSTEM_AGENT', 'RATE_LIMITED'] }),
      },
    )
    .get(
      '/support-escalations',
      async ({ query, request }) => {
        ops(request)
        const limit = Math.min(200, Math.max(1, query.limit ?? 50))
        let before: string | null = null
        if (query.before) {
          const at = Date.parse(query.before)
          if (Number.isNaN(at)) throw fail('VALIDATION_ERROR', 'before must be an ISO 8601 timestamp')
          before = new Date(at).toISOString()
        }
        const rows = await ctx.database.raw.query<EscalationRow>(
          `${SELECT} WHERE ($1::text IS NULL OR e.status = $1) AND ($2::timestamptz IS NULL OR e.created_at < $2::timestamptz)
           ORDER BY e.created_at DESC, e.id DESC LIMIT $3`,
          [query.status ?? null, before, limit],
        )
        return { escalations: rows.map(escalationBody) }
      },
      {
        query: t.Object({
          status: t.Optional(Status),
          limit: t.Optional(t.Integer({ minimum: 1, maximum: 200 })),
          before: t.Optional(t.String({ description: 'ISO 8601: cases opened before this instant' })),
        }),
        detail: doc({ summary: 'Support cases (opened when an agent writes to the system agent), newest first', description: AUTH, tags, errors: ['VALIDATION_ERROR', 'OPS_AUTH_REQUIRED'] }),
      },
    )
    .patch(
      '/support-escalations/:id',
      async ({ params, body, request }) => {
        ops(request)
        const operator = request.headers.get('x-ops-operator')?.trim()
        if (!operator) throw fail('VALIDATION_ERROR', 'X-Ops-Operator header is required (who is making the change)')
        const done = body.status === 'resolved' || body.status === 'dismissed'
        const rows = await ctx.database.raw.query<{ id: string }>(
          `UPDATE support_escalations SET status = $2, resolution_note = COALESCE($3, resolution_note),
             resolved_by = CASE WHEN $4 THEN $5 ELSE resolved_by END, updated_at = now()
           WHERE id = $1 RETURNING id`,
          [params.id, body.status, body.resolution_note ?? null, done, operator.slice(0, 200)],
        )
        if (!rows[0]) throw fail('NOT_FOUND', 'Escalation not found')
        const [row] = await ctx.database.raw.query<EscalationRow>(`${SELECT} WHERE e.id = $1`, [params.id])
        return { escalation: escalationBody(row!) }
      },
      {
        params: t.Object({ id: t.String() }),
        body: t.Object({ status: Status, resolution_note: t.Optional(t.String({ maxLength: 4000 })) }),
        detail: doc({ summary: 'Move a support case (header `X-Ops-Operator` names who)', description: AUTH, tags, errors: ['VALIDATION_ERROR', 'OPS_AUTH_REQUIRED', 'NOT_FOUND'] }),
      },
    )
}
