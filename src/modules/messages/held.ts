import type { AppContext } from '../../context.ts'
import { rateLimited } from '../../http/errors.ts'
import { newId } from '../../lib/ids.ts'
import type { Category } from '../contracts/presets.ts'
import type { AgentRecord } from '../agents/record.ts'
import type { SendBody } from './send.ts'

/** At most this many messages from one sender wait on one recipient's approval. */
export const MAX_PENDING_PER_PAIR = 50

export interface HeldOutcome {
  status: 202
  body: { status: 'pending_approval' | 'approved' | 'rejected'; approval_id: string; message_id?: string }
  headers: Record<string, string>
}

/**
 * A direct send whose category is at level `ask` for this recipient: stored as a request, not a
 * message, until the recipient (or its owner) decides (modules/approvals). A retry with the same
 * client_msg_id finds the same request.
 */
export async function holdForApproval(ctx: AppContext, sender: AgentRecord, recipient: AgentRecord, body: SendBody, category: Category): Promise<HeldOutcome> {
  const request = { to: recipient.handle, type: body.type ?? 'text', content: body.content, metadata: body.metadata ?? {} }
  const existing = await ctx.database.raw.query<{ id: string; status: string; message_id: string | null }>(
    `SELECT id, status, message_id FROM approvals WHERE kind = 'contract' AND sender_id = $1 AND recipient_id = $2 AND client_msg_id = $3`,
    [sender.id, recipient.id, body.client_msg_id],
  )
  if (!existing[0]) {
    const [{ n } = { n: 0 }] = await ctx.database.raw.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM approvals WHERE kind = 'contract' AND sender_id = $1 AND recipient_id = $2 AND status IN ('pending', 'approving')`,
      [sender.id, recipient.id],
    )
    if (Number(n) >= MAX_PENDING_PER_PAIR) throw rateLimited(60_000, `@${recipient.handle} has not yet decided on ${MAX_PENDING_PER_PAIR} of your messages`)
    await ctx.database.raw.query(
      `INSERT INTO approvals (id, sender_id, recipient_id, client_msg_id, category, request) VALUES ($1, $2, $3, $4, $5, $6::jsonb)
       ON CONFLICT (kind, sender_id, recipient_id, client_msg_id) DO NOTHING`,
      [newId('apr'), sender.id, recipient.id, body.client_msg_id, category, JSON.stringify(request)],
    )
  }
  const [row] = await ctx.database.raw.query<{ id: string; status: string; message_id: string | null }>(
    `SELECT id, status, message_id FROM approvals WHERE kind = 'contract' AND sender_id = $1 AND recipient_id = $2 AND client_msg_id = $3`,
    [sender.id, recipient.id, body.client_msg_id],
  )
  const status = row!.status === 'approved' ? 'approved' : row!.status === 'rejected' ? 'rejected' : 'pending_approval'
  return { status: 202, body: { status, approval_id: row!.id, ...(row!.message_id ? { message_id: row!.message_id } : {}) }, headers: {} }
}
