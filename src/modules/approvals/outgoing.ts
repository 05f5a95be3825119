import { recordAudit } from '../../audit/events.ts'
import type { AppContext } from '../../context.ts'
import type { RawSql } from '../../db/client.ts'
import { enqueue } from '../../delivery/webhooks/outbox.ts'
import { fail, rateLimited } from '../../http/errors.ts'
import { newId } from '../../lib/ids.ts'
import type { AgentRecord } from '../agents/record.ts'
import type { HeldOutcome } from '../messages/held.ts'
import { send, type SendBody } from '../messages/send.ts'

/*
 * Approval before send (issue 16.6): the SENDER's owner approves its own agent's outgoing
 * messages. Rows live in `approvals` beside the permission-contract holds (which wait for the
 * RECIPIENT's approval) with `kind = 'outgoing'`: same idempotency key, same claim-then-act
 * decision and the same `message.approved` / `message.rejected` events, but a different decider
 * (the owner of `sender_id`), a different list and different re-checks.
 */

export type ApprovalMode = 'none' | 'all' | 'cold'
export const APPROVAL_MODES = ['none', 'all', 'cold'] as const

/** At most this many of one agent's sends wait on its owner at once (then 429). */
export const MAX_PENDING_OUTGOING = 100

/** A decision older than this still `approving` was abandoned (a crashed process): it may be taken again. */
const STALE_APPROVING_S = 120

export const approvalModeOf = (a: Pick<AgentRecord, 'ownerApproval'>): ApprovalMode =>
  a.ownerApproval === 'all' || a.ownerApproval === 'cold' ? a.ownerApproval : 'none'

/**
 * Whether this send waits for the owner: `all` holds every send; `cold` only a direct send that
 * would open a new conversation (none exists yet with the recipient). Group sends are never cold.
 */
export function holdsOutgoing(sender: AgentRecord, target: { direct: boolean; conversationExists: boolean }): boolean {
  const mode = approvalModeOf(sender)
  if (mode === 'all') return true
  if (mode === 'cold') return target.direct && !target.conversationExists
  return false
}

interface OutgoingRequest {
  to?: string
  conversation_id?: string
  type: string
  content: SendBody['content']
  metadata: Record<string, unknown>
}

interface OutgoingRow {
  id: string
  sender_id: string
  recipient_id: string
  client_msg_id: string
  request: OutgoingRequest | string
  status: string
  message_id: string | null
  decided_by: string | null
  created_at: Date | string
  decided_at: Date | string | null
}

const requestOf = (r: OutgoingRow): OutgoingRequest => (typeof r.request === 'string' ? JSON.parse(r.request) : r.request)

export function outgoingBody(r: OutgoingRow) {
  const req = requestOf(r)
  return {
    id: r.id,
    kind: 'outgoing' as const,
    ...(req.to ? { to: req.to } : { conversation_id: req.conversation_id! }),
    client_msg_id: r.client_msg_id,
    type: req.type,
    content: req.content,
    metadata: req.metadata,
    status: r.status,
    message_id: r.message_id,
    created_at: new Date(r.created_at).toISOString(),
    decided_at: r.decided_at ? new Date(r.decided_at).toISOString() : null,
  }
}

/**
 * Hold a send for the sender's owner. Called after the checks that do not depend on time
 * (validation, recipient or group, pause, blocks, inbox mode); rate, cold cap, backlog,
 * AWAITING_REPLY, loop damping and contracts are checked when the owner approves. A retry with
 * the same client_msg_id finds the same request (and, once decided, its outcome).
 */
export async function holdOutgoing(
  ctx: AppContext,
  sender: AgentRecord,
  target: { recipientId: string; to?: string; conversationId?: string },
  body: SendBody,
): Promise<HeldOutcome> {
  const request: OutgoingRequest = {
    ...(target.to ? { to: target.to } : { conversation_id: target.conversationId! }),
    type: body.type ?? 'text',
    content: body.content,
    metadata: body.metadata ?? {},
  }
  const find = () =>
    ctx.database.raw.query<OutgoingRow>(
      `SELECT * FROM approvals WHERE kind = 'outgoing' AND sender_id = $1 AND recipient_id = $2 AND client_msg_id = $3`,
      [sender.id, target.recipientId, body.client_msg_id],
    )
  let [row] = await find()
  if (!row) {
    const inserted = await ctx.database.transaction(async (q) => {
      const [{ n } = { n: 0 }] = await q.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM approvals WHERE kind = 'outgoing' AND sender_id = $1 AND status IN ('pending', 'approving')`,
        [sender.id],
      )
      if (Number(n) >= MAX_PENDING_OUTGOING) throw rateLimited(60_000, `${MAX_PENDING_OUTGOING} of your messages already wait for your owner's approval`)
      const rows = await q.query<OutgoingRow>(
        `INSERT INTO approvals (id, kind, sender_id, recipient_id, client_msg_id, category, request) VALUES ($1, 'outgoing', $2, $3, $4, '', $5::jsonb)
         ON CONFLICT (kind, sender_id, recipient_id, client_msg_id) DO NOTHING RETURNING *`,
        [newId('apr'), sender.id, target.recipientId, body.client_msg_id, JSON.stringify(request)],
      )
      if (rows[0]) {
        await recordAudit(q, {
          agentId: sender.id,
          actorType: 'agent',
          action: 'message.approval_requested',
          metadata: { approval_id: rows[0].id, ...(target.to ? { to: target.to } : { conversation_id: target.conversationId }), client_msg_id: body.client_msg_id },
        })
      }
      return rows[0] ?? null
    })
    if (inserted) ctx.dashboard.notify([sender.id], 'approval.pending', outgoingBody(inserted))
    row = inserted ?? (await find())[0]
  }
  const status = row!.status === 'approved' ? 'approved' : row!.status === 'rejected' ? 'rejected' : 'pending_approval'
  return { status: 202, body: { status, approval_id: row!.id, ...(row!.message_id ? { message_id: row!.message_id } : {}) }, headers: {} }
}

/** The agent's sends waiting for its owner, oldest first. */
export async function outgoingFor(ctx: AppContext, senderId: string) {
  const rows = await ctx.database.raw.query<OutgoingRow>(
    `SELECT * FROM approvals WHERE kind = 'outgoing' AND sender_id = $1 AND status = 'pending' ORDER BY created_at, id LIMIT 200`,
    [senderId],
  )
  return rows.map(outgoingBody)
}

/** Whether `approvalId` is one of this agent's outgoing holds (the dashboard route dispatches on it). */
export async function isOutgoingOf(ctx: AppContext, approvalId: string, senderId: string): Promise<boolean> {
  const rows = await ctx.database.raw.query(`SELECT 1 FROM approvals WHERE id = $1 AND kind = 'outgoing' AND sender_id = $2`, [approvalId, senderId])
  return rows.length > 0
}

function rejectedData(r: OutgoingRow, decidedAt: string, reason: 'rejected' | 'claim_released') {
  const req = requestOf(r)
  return {
    approval_id: r.id,
    kind: 'outgoing' as const,
    ...(req.to ? { recipient_handle: req.to } : { conversation_id: req.conversation_id }),
    client_msg_id: r.client_msg_id,
    reason,
    decided_at: decidedAt,
  }
}

/**
 * The owner approves or rejects a held send of its agent. The request is claimed first (one
 * conditional UPDATE, `pending` → `approving` / `rejected`), so of two concurrent decisions —
 * two tabs, two processes — exactly one acts and the other gets 409 ALREADY_DECIDED. Approval
 * then sends the message through the whole send path again (rate, cold cap, AWAITING_REPLY,
 * loop damping, contracts, backlog, blocks, pause); if that send is refused now, the request
 * goes back to `pending` (still decidable: approve again later, or reject) and the refusal is the
 * owner's answer. Rejection never writes a message. The sender hears the outcome either way.
 */
export async function decideOutgoing(ctx: AppContext, ownerId: string, agent: AgentRecord, approvalId: string, verdict: 'approve' | 'reject') {
  const decidedBy = `owner:${ownerId}`
  if (verdict === 'reject') {
    const decidedAt = new Date().toISOString()
    const out = await ctx.database.transaction(async (q) => {
      const [row] = await q.query<OutgoingRow>(
        `UPDATE approvals SET status = 'rejected', decided_by = $3, decided_at = now()
         WHERE id = $1 AND kind = 'outgoing' AND sender_id = $2 AND status = 'pending' RETURNING *`,
        [approvalId, agent.id, decidedBy],
      )
      if (!row) return null
      const data = rejectedData(row, decidedAt, 'rejected')
      await enqueue(q, 'message.rejected', row.id, data, { agents: [agent.id] })
      await recordAudit(q, { agentId: agent.id, ownerId, actorType: 'owner', action: 'message.rejected', metadata: { approval_id: row.id, client_msg_id: row.client_msg_id } })
      return { row, data }
    })
    if (!out) throw await notDecidable(ctx, approvalId, agent.id)
    ctx.push.toAgents([agent.id], JSON.stringify({ type: 'message.rejected', payload: out.data }))
    ctx.dashboard.notify([agent.id], 'approval.decided', { approval_id: out.row.id, status: 'rejected' })
    return { approval: { ...outgoingBody(out.row), status: 'rejected' } }
  }

  const [row] = await ctx.database.raw.query<OutgoingRow>(
    `UPDATE approvals SET status = 'approving', decided_by = $3, decided_at = now()
     WHERE id = $1 AND kind = 'outgoing' AND sender_id = $2
       AND (status = 'pending' OR (status = 'approving' AND decided_at < now() - make_interval(secs => $4)))
     RETURNING *`,
    [approvalId, agent.id, decidedBy, STALE_APPROVING_S],
  )
  if (!row) throw await notDecidable(ctx, approvalId, agent.id)
  const req = requestOf(row)
  let out
  try {
    // Fresh copy: a pause, a block or a deletion since the hold is seen by the send path.
    const sender = await ctx.agents.get(agent.id)
    if (!sender || sender.status === 'deleted') throw fail('AGENT_NOT_FOUND')
    const body: SendBody = {
      ...(req.to ? { to: req.to } : { conversation_id: req.conversation_id! }),
      client_msg_id: row.client_msg_id,
      type: req.type as SendBody['type'],
      content: req.content,
      metadata: req.metadata,
    }
    out = await send(ctx, sender, body, { ownerApproved: true })
  } catch (err) {
    await ctx.database.raw.query(`UPDATE approvals SET status = 'pending', decided_by = NULL, decided_at = NULL WHERE id = $1 AND status = 'approving'`, [row.id])
    throw err
  }
  const decidedAt = new Date().toISOString()
  // The owner's approval passed; the recipient's contract may hold it in turn (202 again).
  const message = 'approval_id' in out.body ? null : out.body
  const recipientApprovalId = 'approval_id' in out.body ? out.body.approval_id : null
  const data = {
    approval_id: row.id,
    kind: 'outgoing' as const,
    ...(req.to ? { recipient_handle: req.to } : {}),
    conversation_id: message?.conversation_id ?? req.conversation_id ?? null,
    message_id: message?.id ?? null,
    message,
    ...(recipientApprovalId ? { recipient_approval_id: recipientApprovalId } : {}),
    client_msg_id: row.client_msg_id,
    decided_at: decidedAt,
  }
  await ctx.database.transaction(async (q) => {
    await q.query(`UPDATE approvals SET status = 'approved', message_id = $2 WHERE id = $1`, [row.id, message?.id ?? null])
    await enqueue(q, 'message.approved', row.id, data, { agents: [agent.id] })
    await recordAudit(q, {
      agentId: agent.id,
      ownerId,
      actorType: 'owner',
      action: 'message.approved',
      metadata: { approval_id: row.id, client_msg_id: row.client_msg_id, message_id: message?.id ?? null },
    })
  })
  ctx.push.toAgents([agent.id], JSON.stringify({ type: 'message.approved', payload: data }))
  ctx.dashboard.notify([agent.id], 'approval.decided', { approval_id: row.id, status: 'approved' })
  return {
    approval: { ...outgoingBody(row), status: 'approved', message_id: message?.id ?? null, decided_at: decidedAt, ...(recipientApprovalId ? { recipient_approval_id: recipientApprovalId } : {}) },
    message,
  }
}

async function notDecidable(ctx: AppContext, approvalId: string, senderId: string) {
  return (await isOutgoingOf(ctx, approvalId, senderId)) ? fail('ALREADY_DECIDED') : fail('APPROVAL_NOT_FOUND')
}

/**
 * POST /dashboard/agents/:handle/approval. Under the claim row's lock (a concurrent release
 * cannot slip between check and update), with its audit event; then every worker's and
 * process's cached copy is dropped, so the next send anywhere sees the mode.
 */
export async function setApprovalMode(ctx: AppContext, ownerId: string, agent: AgentRecord, mode: ApprovalMode) {
  const before = approvalModeOf(agent)
  await ctx.database.transaction(async (q) => {
    const held = await q.query(`SELECT 1 FROM owner_claims WHERE agent_id = $1 AND owner_id = $2 FOR UPDATE`, [agent.id, ownerId])
    if (held.length === 0) throw fail('AGENT_NOT_FOUND')
    await q.query(`UPDATE agents SET owner_approval = $2, updated_at = now() WHERE id = $1`, [agent.id, mode])
    if (before !== mode) {
      await recordAudit(q, { agentId: agent.id, ownerId, actorType: 'owner', action: 'agent.approval_mode_changed', metadata: { mode, previous: before } })
    }
  })
  await ctx.agents.changed(agent.id)
  return { handle: agent.handle, approval_mode: mode }
}

/**
 * The claim ended (released, or revoked by a key rotation): nobody can decide the agent's held
 * sends any more, so they are rejected (`reason: "claim_released"`), inside the claim's
 * transaction, with their webhooks. Returns the frames to push once it commits.
 */
export async function dropOutgoing(q: RawSql, agentId: string): Promise<string[]> {
  const rows = await q.query<OutgoingRow>(
    `UPDATE approvals SET status = 'rejected', decided_by = 'system:claim_released', decided_at = now()
     WHERE kind = 'outgoing' AND sender_id = $1 AND status = 'pending' RETURNING *`,
    [agentId],
  )
  const decidedAt = new Date().toISOString()
  const frames: string[] = []
  for (const r of rows) {
    const data = rejectedData(r, decidedAt, 'claim_released')
    await enqueue(q, 'message.rejected', r.id, data, { agents: [agentId] })
    frames.push(JSON.stringify({ type: 'message.rejected', payload: data }))
  }
  return frames
}
