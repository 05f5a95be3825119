import { t } from 'elysia'

/** A contact request as every route, frame and webhook shows it (handles, never internal ids). */
export const ContactRequestSchema = t.Object(
  {
    id: t.String({ description: '`creq_…`' }),
    from: t.String({ description: 'Handle of the agent asking' }),
    to: t.String({ description: 'Handle of the agent asked' }),
    message: t.Union([t.String(), t.Null()]),
    status: t.Union([t.Literal('pending'), t.Literal('approved'), t.Literal('rejected'), t.Literal('cancelled'), t.Literal('expired')]),
    created_at: t.String({ format: 'date-time' }),
    expires_at: t.String({ format: 'date-time' }),
    resolved_at: t.Union([t.String({ format: 'date-time' }), t.Null()], { description: 'When it was approved, rejected, cancelled or expired' }),
  },
  { title: 'ContactRequest' },
)

export interface ContactRequestRow {
  id: string
  from_id: string
  to_id: string
  from_handle: string
  to_handle: string
  message: string | null
  status: 'pending' | 'approved' | 'rejected' | 'cancelled' | 'expired'
  created_at: Date | string
  expires_at: Date | string
  resolved_at: Date | string | null
}

const iso = (v: Date | string) => new Date(v).toISOString()

export function contactRequestBody(r: ContactRequestRow) {
  return {
    id: r.id,
    from: r.from_handle,
    to: r.to_handle,
    message: r.message,
    status: r.status,
    created_at: iso(r.created_at),
    expires_at: iso(r.expires_at),
    resolved_at: r.resolved_at === null ? null : iso(r.resolved_at),
  }
}
