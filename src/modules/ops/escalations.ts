import type { AppContext } from '../../context.ts'
import { newId } from '../../lib/ids.ts'

export const ESCALATION_STATUSES = ['open', 'in_progress', 'resolved', 'dismissed'] as const
export type EscalationStatus = (typeof ESCALATION_STATUSES)[number]

export interface EscalationRow {
  id: string
  agent_id: string | null
  handle: string | null
  status: EscalationStatus
  subject: string
  body: string | null
  resolution_note: string | null
  resolved_by: string | null
  created_at: Date | string
  updated_at: Date | string
}

export const escalationBody = (r: EscalationRow) => ({
  id: r.id,
  agent_handle: r.handle,
  status: r.status,
  subject: r.subject,
  body: r.body,
  resolution_note: r.resolution_note,
  resolved_by: r.resolved_by,
  created_at: new Date(r.created_at).toISOString(),
  updated_at: new Date(r.updated_at).toISOString(),
})

/**
 * An agent writing to the system agent is asking the operators for help: the first message opens
 * a case; later ones while it is open are added to its body. The conditional insert keeps one open
 * case per agent, even with concurrent messages.
 */
export async function noteSupportMessage(ctx: AppContext, agentId: string, text: string): Promise<void> {
  const line = text.slice(0, 2000)
  // Insert-or-append in one statement: the partial unique index (one open case per agent) decides
  // a race between concurrent messages, and the loser appends instead of opening a second case.
  await ctx.database.raw.query(
    `INSERT INTO support_escalations (id, agent_id, subject, body) VALUES ($1, $2, $3, $4)
     ON CONFLICT (agent_id) WHERE status IN ('open', 'in_progress')
     DO UPDATE SET body = left(coalesce(support_escalations.body, '') || E'\\n' || EXCLUDED.body, 20000), updated_at = now()`,
    [newId('esc'), agentId, line.replace(/\s+/g, ' ').slice(0, 120) || '(no text)', line],
  )
}
