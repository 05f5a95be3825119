import { enqueue } from '../../delivery/webhooks/outbox.ts'
import type { AppContext } from '../../context.ts'
import { fail } from '../../http/errors.ts'
import type { AgentRecord } from '../agents/record.ts'
import { send, type SendBody } from '../messages/send.ts'

export interface ApprovalRow {
  id: string
  sender_id: string
  recipient_id: string
  client_msg_id: string
  category: string
  request: { to: string; type: string; content: SendBody['content']; metadata: Record<string, unknown> } | string
  status: string
  created_at: Date | string
}

const requestOf = (r: ApprovalRow) => (typeof r.request === 'string' ? JSON.parse(r.request) : r.request) as Exclude<ApprovalRow['request'], string>

export async function approvalBody(ctx: AppContext, r: ApprovalRow) {
  const sender = await ctx.agents.get(r.sender_id)
  const req = requestOf(r)
  return {
    id: r.id,
    from: sender?.handle ?? 'unknown',
    category: r.category,
    client_msg_id: r.client_msg_id,
    type: req.type,
    content: req.content,
    metadata: req.metadata,
    status: r.status,
    created_at: new Date(r.created_at).toISOString(),
  }
}

/** The recipient's pending requests, oldest first. */
export async function pendingFor(ctx: AppContext, recipientId: string) {
  const rows = await ctx.database.raw.query<ApprovalRow>(
    `SELECT * FROM approvals WHERE kind = 'contract' AND recipient_id = $1 AND status = 'pending' ORDER BY created_at, id LIMIT 200`,
    [recipientId],
  )
  return Promise.all(rows.map((r) => approvalBody(ctx, r)))
}

/**
 * Approve or reject a held send, as its recipient (or the recipient's owner). The request is
 * claimed first (`pending` → `approving` / `rejected`, one statement), so of two concurrent
 * decisions exactly one acts. Approval sends the message as the sender asked for it, through
 * every check of the send path but the category; if that send is refused now (the sender was
 * blocked meanwhile, say), the request goes back to `pending` and the refusal is the answer.
 * The sender hears the outcome: a `message.approved` / `message.rejected` frame and webhook.
 */
export async function decide(ctx: AppContext, recipient: AgentRecord, approvalId: string, verdict: 'approve' | 'reject', decidedBy: string) {
  const next = verdict === 'approve' ? 'approving' : 'rejected'
  const [row] = await ctx.database.raw.query<ApprovalRow>(
    `UPDATE approvals SET status = $3, decided_by = $4, decided_at = now() WHERE id = $1 AND kind = 'contract' AND recipient_id = $2 AND status = 'pending' RETURNING *`,
    [approvalId, recipient.id, next, decidedBy],
  )
  if (!row) {
    const seen = await ctx.database.raw.query(`SELECT 1 FROM approvals WHERE id = $1 AND kind = 'contract' AND recipient_id = $2`, [approvalId, recipient.id])
    throw seen.length > 0 ? fail('ALREADY_DECIDED') : fail('APPROVAL_NOT_FOUND')
  }
  const sender = await ctx.agents.get(row.sender_id)
  const decidedAt = new Date().toISOString()
  if (verdict === 'reject') {
    const data = { approval_id: row.id, recipient_handle: recipient.handle, client_msg_id: row.client_msg_id, decided_at: decidedAt }
    await enqueue(ctx.database.raw, 'message.rejected', row.id, data, { agents: [row.sender_id] })
    ctx.push.toAgents([row.sender_id], JSON.stringify({ type: 'message.rejected', payload: data }))
    return { ...(await approvalBody(ctx, row)), status: 'rejected' }
  }
  const req = requestOf(row)
  let out
  try {
    if (!sender || sender.status === 'deleted') throw fail('AGENT_NOT_FOUND', 'The sender no longer exists')
    out = await send(ctx, sender, { to: recipient.handle, client_msg_id: row.client_msg_id, type: req.type as SendBody['type'], content: req.content, metadata: req.metadata }, { approved: true })
  } catch (err) {
    await ctx.database.raw.query(`UPDATE approvals SET status = 'pending', decided_by = NULL, decided_at = NULL WHERE id = $1 AND status = 'approving'`, [row.id])
    throw err
  }
  const message = out.body as { id: string; conversation_id: string }
  await ctx.database.transaction(async (q) => {
    await q.query(`UPDATE approvals SET status = 'approved', message_id = $2 WHERE id = $1`, [row.id, message.id])
    const data = { approval_id: row.id, message_id: message.id, conversation_id: message.conversation_id, recipient_handle: recipient.handle, client_msg_id: row.client_msg_id, decided_at: decidedAt }
    await enqueue(q, 'message.approved', row.id, data, { agents: [row.sender_id] })
    ctx.push.toAgents([row.sender_id], JSON.stringify({ type: 'message.approved', payload: data }))
  })
  return { ...(await approvalBody(ctx, row)), status: 'approved', message_id: message.id }
}
