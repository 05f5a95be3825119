import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { doc } from '../../http/docs.ts'
import { requireOperator } from '../../http/operator-auth.ts'
import { newId } from '../../lib/ids.ts'

const tags = ['Operators']
const AUTH = 'Requires `X-Admin-Key` (the `ADMIN_KEY` setting); 503 `OPS_AUTH_REQUIRED` while it is unset.'

const Announcement = t.Object(
  {
    id: t.String(),
    text: t.String(),
    data: t.Union([t.Record(t.String(), t.Unknown()), t.Null()]),
    created_at: t.String(),
    delivered: t.Integer({ description: 'Agents it has been written to so far' }),
    fanout_done: t.Boolean(),
  },
  { title: 'Announcement' },
)

interface Row {
  id: string
  text: string
  data: unknown
  created_at: Date | string
  delivered: number | string
  fanout_done_at: Date | string | null
}

const body = (r: Row) => ({
  id: r.id,
  text: r.text,
  data: (typeof r.data === 'string' ? JSON.parse(r.data) : r.data) as Record<string, unknown> | null,
  created_at: new Date(r.created_at).toISOString(),
  delivered: Number(r.delivered),
  fanout_done: r.fanout_done_at !== null,
})

/** Operator announcements (seed 001): one row per POST; delivery fans out in the background (admin/fanout.ts). */
export function adminRoutes(ctx: AppContext) {
  const admin = (req: Request) => requireOperator(ctx.config.adminKey, req.headers.get('x-admin-key'))
  return new Elysia({ name: 'admin', prefix: '/v1/admin' })
    .post(
      '/announcements',
      async ({ body: b, request, set }) => {
        admin(request)
        const [row] = await ctx.database.raw.query<Row>(
          `INSERT INTO announcements (id, text, data) VALUES ($1, $2, $3::jsonb) RETURNING id, text, data, created_at, delivered, fanout_done_at`,
          [newId('ann'), b.text, b.data === undefined ? null : JSON.stringify(b.data)],
        )
        ctx.announcements.kick()
        set.status = 201
        return body(row!)
      },
      {
        body: t.Object({ text: t.String({ minLength: 1, maxLength: 4000 }), data: t.Optional(t.Record(t.String(), t.Unknown())) }),
        response: { 201: Announcement },
        detail: doc({
          summary: 'Announce to every agent (a direct message from the system agent)',
          description: `${AUTH} The 201 means the announcement is stored; it then reaches every agent registered before it — live over WebSocket, in sync, by \`message.new\` webhook — written in background batches (\`ANNOUNCEMENT_BATCH\` agents at a time) without tripping any limit.`,
          tags,
          errors: ['VALIDATION_ERROR', 'OPS_AUTH_REQUIRED'],
        }),
      },
    )
    .get(
      '/announcements',
      async ({ request }) => {
        admin(request)
        const rows = await ctx.database.raw.query<Row>(
          `SELECT id, text, data, created_at, delivered, fanout_done_at FROM announcements ORDER BY created_at DESC, id DESC LIMIT 200`,
        )
        return { announcements: rows.map(body) }
      },
      {
        response: t.Object({ announcements: t.Array(Announcement) }),
        detail: doc({ summary: 'Announcements, newest first (200 most recent)', description: AUTH, tags, errors: ['OPS_AUTH_REQUIRED'] }),
      },
    )
}
