import type { AppContext } from '../../context.ts'
import { uniqueViolation } from '../../db/errors.ts'
import { ApiError, agentNotFound, fail, rateLimited } from '../../http/errors.ts'
import { normalizeHandle } from '../../lib/handles.ts'
import { newId } from '../../lib/ids.ts'
import { BACKLOG } from '../../limits/backlog.ts'
import { takeSenderToken } from '../../limits/send-rate.ts'
import { isVisible, type AgentRecord } from '../agents/record.ts'
import { pairOf, type DirectConversation } from '../conversations/direct-cache.ts'
import { DIRECT, MESSAGE_COLUMNS, publicMessage, rowToMessage, sendOutcome, type MessageRow, type PublicMessage, type SendOutcome, type StoredMessage } from './shape.ts'
import { overloadError, writeBatch, type WriteJob, type WriteResult } from './writer.ts'
import { sendToGroup } from '../groups/service.ts'
import { checkAttachmentForSend } from '../uploads/scope.ts'
import { noteSupportMessage } from '../ops/escalations.ts'
import type { Category } from '../contracts/presets.ts'
import { categoryOf, levelFor } from '../contracts/rules.ts'
import { holdForApproval, type HeldOutcome } from './held.ts'
import { spendMessageQuota } from '../../limits/quotas.ts'
import { requireThread, threadIntent } from '../threads/rules.ts'
import { pairBudget } from '../agents/safety.ts'
import { takeTurn } from './loops.ts'
import { wakes } from './wake.ts'
import { holdOutgoing, holdsOutgoing } from '../approvals/outgoing.ts'
import { expiresAt, ttlSeconds } from './expiry.ts'

/** Limits of contract §5.1 / §17. */
export const MESSAGE_LIMITS = { maxPayloadBytes: 32_768, coldPerDay: 100 } as const

export interface SendBody {
  to?: string
  conversation_id?: string
  client_msg_id: string
  type?: 'text' | 'structured' | 'file' | 'system'
  content: { text?: string; data?: Record<string, unknown>; attachment_id?: string }
  metadata?: Record<string, unknown>
}


/** Size rule: JSON of content plus JSON of metadata, in bytes. */
export function payloadBytes(content: unknown, metadata: unknown): number {
  return Buffer.byteLength(JSON.stringify(content)) + Buffer.byteLength(JSON.stringify(metadata ?? {}))
}

/** Keep only the content keys the wire defines (README examples send `content.type`; it is dropped). */
function cleanContent(c: SendBody['content']): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (c.text !== undefined) out.text = c.text
  if (c.data !== undefined) out.data = c.data
  if (c.attachment_id !== undefined) out.attachment_id = c.attachment_id
  return out
}

export interface SendOptions {
  /** The recipient approved this held send (modules/approvals): its category is not checked again. */
  approved?: boolean
  /** The sender's owner approved this held send (approvals/outgoing): it is not held again. */
  ownerApproved?: boolean
}

/** POST /v1/messages: validates the target, then dispatches to the direct (or group) path. */
export async function send(ctx: AppContext, sender: AgentRecord, body: SendBody, opts: SendOptions = {}): Promise<SendOutcome | HeldOutcome> {
  const hasTo = typeof body.to === 'string' && body.to.length > 0
  const hasConv = typeof body.conversation_id === 'string' && body.conversation_id.length > 0
  if (hasTo === hasConv) throw fail('VALIDATION_ERROR', 'Exactly one of `to` or `conversation_id` must be provided')
  const content = cleanContent(body.content)
  if (Object.keys(content).length === 0) {
    throw fail('VALIDATION_ERROR', 'content must include at least one of text, data or attachment_id')
  }
  if (payloadBytes(content, body.metadata) > MESSAGE_LIMITS.maxPayloadBytes) throw fail('CONTENT_TOO_LARGE')
  ttlSeconds(body.metadata) // expiry (issue 16.3): 400 before any limit is spent
  const category = categoryOf(body.metadata)
  const thread = threadIntent(body.metadata)
  // A hold keeps the send as the agent made it: a thread it opens gets its id when it is written.
  const asSent = body
  if (thread) body = { ...body, metadata: thread.metadata }
  // Past the writer's bounds (queue length or queueing delay): a fast 503, before any token or
  // backlog slot is taken.
  if (ctx.writer.overloaded()) throw overloadError()
  if (hasConv) {
    const id = body.conversation_id!
    if (id.startsWith('conv_')) throw fail('VALIDATION_ERROR', 'Use `to` to send to a direct conversation')
    await checkAttachmentForSend(ctx, sender.id, content.attachment_id, { groupId: id })
    if (thread?.replyTo) await requireThread(ctx.database.raw, id, thread.replyTo)
    // Approval before send (mode `all`; a group is never a first contact): held once the group,
    // membership and pause checks pass — otherwise sendToGroup answers with the refusal.
    if (!opts.ownerApproved && holdsOutgoing(sender, { direct: false, conversationExists: true }) && sender.pausedByOwner === 'none') {
      const g = await ctx.groups.get(id)
      if (g && !g.deletedAt && g.members.some((m) => m.agentId === sender.id)) return holdOutgoing(ctx, sender, { recipientId: g.id, conversationId: g.id }, asSent)
    }
    return sendToGroup(ctx, sender, body, content)
  }
  return sendDirect(ctx, sender, body, content, opts.approved ? null : category, thread?.replyTo ?? null, asSent, !opts.ownerApproved)
}

async function sendDirect(
  ctx: AppContext,
  sender: AgentRecord,
  body: SendBody,
  content: Record<string, unknown>,
  category: Category | null,
  threadReply: string | null,
  /** The send as made (before a new thread got its id): what a hold stores, so approving it opens the thread then. */
  asSent: SendBody,
  /** False once the sender's owner approved this send. */
  holdForOwner: boolean,
): Promise<SendOutcome | HeldOutcome> {
  // Checks in the contract's order (§5.1).
  const handle = normalizeHandle(body.to!)
  const recipient = await ctx.agents.getByHandle(handle)
  if (!recipient || !isVisible(recipient)) throw agentNotFound(handle)
  if (recipient.id === sender.id) throw fail('VALIDATION_ERROR', 'You cannot send a message to yourself')
  if (sender.pausedByOwner !== 'none') throw fail('AGENT_PAUSED_BY_OWNER')
  if (await ctx.relations.blockedEitherWay(sender.id, recipient.id)) throw fail('BLOCKED')
  await checkAttachmentForSend(ctx, sender.id, content.attachment_id, { recipientId: recipient.id })
  let conv = await ctx.directs.get(sender.id, recipient.id)
  if (sender.status === 'restricted' && !conv) throw fail('RESTRICTED')
  if (threadReply) await requireThread(ctx.database.raw, conv?.id ?? null, threadReply)
  if (recipient.inboxMode === 'contacts_only' && !(await ctx.relations.hasContact(recipient.id, sender.id))) {
    throw fail('INBOX_RESTRICTED')
  }
  // Approval before send (issue 16.6): held for the sender's owner after the checks that do not
  // depend on time; what does (rate, damping, contracts, cold cap, backlog) is checked on approval.
  if (holdForOwner && holdsOutgoing(sender, { direct: true, conversationExists: conv !== null })) {
    if (category && (await levelFor(ctx, recipient.id, sender.id, category)) === 'never') throw categoryBlocked(recipient, category)
    return holdOutgoing(ctx, sender, { recipientId: recipient.id, to: recipient.handle }, asSent)
  }
  const admittedAt = await takeSenderToken(ctx.sendRate, sender)
  const msgId = newId('msg')
  // Loop damping: only an existing conversation can loop (a cold one waits for its reply anyway).
  if (conv) await takeTurn(ctx, sender, conv.id, pairBudget(sender, recipient), body.metadata, msgId, recipient)
  // Permission contracts (seed 001): only sends that name a category pay for the lookup.
  if (category) {
    const level = await levelFor(ctx, recipient.id, sender.id, category)
    if (level === 'never') throw categoryBlocked(recipient, category)
    if (level === 'ask') return holdForApproval(ctx, sender, recipient, asSent, category)
  }
  await spendMessageQuota(ctx, sender)

  const job: WriteJob = {
    id: msgId,
    conversationId: conv?.id ?? '',
    senderId: sender.id,
    clientMsgId: body.client_msg_id,
    type: body.type ?? 'text',
    content,
    metadata: body.metadata ?? {},
    createdAt: admittedAt,
    expiresAt: expiresAt(body.metadata, admittedAt),
  }

  if (conv) {
    const gate = await awaitingReply(ctx, conv, sender, recipient, body.client_msg_id)
    if ('replayed' in gate) return replay(ctx, gate.replayed, sender)
    conv = gate.conv
  }

  const slot = await ctx.backlog.reserve(recipient.id)
  if (!slot.ok) {
    throw new ApiError('RECIPIENT_BACKLOGGED', `@${recipient.handle} has too many undelivered messages`, {
      recipient_handle: recipient.handle,
      undelivered_count: slot.before,
    })
  }

  let result: WriteResult
  try {
    for (;;) {
      if (conv) {
        job.conversationId = conv.id
        if (!conv.established) job.establish = { agentA: conv.agentA, agentB: conv.agentB }
        result = await ctx.writer.write(job)
        break
      }
      const cold = await coldSend(ctx, sender, recipient, job)
      if ('result' in cold) {
        result = cold.result
        break
      }
      // The conversation appeared meanwhile (the other side opened it, or a concurrent send of ours).
      const gate = await awaitingReply(ctx, cold.existing, sender, recipient, body.client_msg_id)
      if ('replayed' in gate) {
        ctx.backlog.release(recipient.id)
        return replay(ctx, gate.replayed, sender)
      }
      conv = gate.conv
    }
  } catch (err) {
    ctx.backlog.release(recipient.id)
    throw err
  }
  if (result.replay) {
    ctx.backlog.release(recipient.id)
    return replay(ctx, result.message, sender)
  }
  if (job.establish) {
    await ctx.directs.changed(sender.id, recipient.id)
    await ctx.relations.changed(sender.id, recipient.id)
  }
  // Serialised once: the same public message is the live frame's payload and, with the envelope
  // fields, the 201 body.
  const pub = await publicMessage(ctx.agents, result.message, DIRECT, sender)
  const outcome = sendOutcome(pub, 201)
  if (slot.before >= BACKLOG.warnAt) outcome.headers['X-Backlog-Warning'] = `${recipient.handle}=${slot.before}`
  await fanOutDirect(ctx, sender, recipient, pub)
  if (job.expiresAt) ctx.expiry.schedule(job.expiresAt)
  ctx.dashboard.observe(result.message, [sender.id, recipient.id])
  // Writing to the system agent is asking the operators for help (a support case).
  if (recipient.isSystem && !sender.isSystem) {
    const text = typeof content.text === 'string' ? content.text : JSON.stringify(content)
    await noteSupportMessage(ctx, sender.id, text).catch((err) => ctx.log.warn({ err }, 'support case not recorded'))
  }
  return outcome
}

const categoryBlocked = (recipient: AgentRecord, category: Category) =>
  fail('CATEGORY_BLOCKED', `@${recipient.handle} does not accept ${category} messages from you`, { recipient_handle: recipient.handle, category })

/** 200 with the original row for a replayed client_msg_id. */
async function replay(ctx: AppContext, message: WriteResult['message'], sender: AgentRecord): Promise<SendOutcome> {
  return sendOutcome(await publicMessage(ctx.agents, message, DIRECT, sender), 200)
}

/**
 * One message per cold conversation until the reply (AWAITING_REPLY), except that a replay of
 * that first message (same client_msg_id) still answers 200 with the original. Before refusing,
 * the conversation is read again from the database: the cached copy can predate an
 * establishment that did not come through this conversation's writer (an accepted invite, see
 * modules/invites), e.g. when this worker remembered a cold send that committed just before it,
 * or the bus has not yet told this worker. Only the refusal path pays for the read.
 */
async function awaitingReply(
  ctx: AppContext,
  conv: DirectConversation,
  sender: AgentRecord,
  recipient: AgentRecord,
  clientMsgId: string,
): Promise<{ replayed: StoredMessage } | { conv: DirectConversation }> {
  if (conv.established || conv.initiatorId !== sender.id) return { conv }
  const replayed = await findReplay(ctx, conv.id, sender.id, clientMsgId)
  if (replayed) return { replayed }
  const fresh = await ctx.directs.load(ctx.database.raw, conv.agentA, conv.agentB)
  if (fresh?.established) {
    ctx.directs.remember(fresh)
    return { conv: fresh }
  }
  throw new ApiError('AWAITING_REPLY', 'Wait for a reply before sending another message', {
    recipient_handle: recipient.handle,
    waiting_since: conv.createdAt.toISOString(),
  })
}

async function findReplay(ctx: AppContext, conversationId: string, senderId: string, clientMsgId: string) {
  const rows = await ctx.database.raw.query<MessageRow>(
    `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.conversation_id = $1 AND m.sender_id = $2 AND m.client_msg_id = $3`,
    [conversationId, senderId, clientMsgId],
  )
  return rows[0] ? rowToMessage(rows[0]) : null
}

/**
 * Live push of a new direct message, unless the recipient is fully paused or muted the
 * sender/conversation: then the message is only stored, and its long-polls are woken (sync
 * returns it, so the stream does; a paused agent's stream answers nothing until unpaused). Wake
 * filters hold the push back too.
 */
async function fanOutDirect(ctx: AppContext, sender: AgentRecord, recipient: AgentRecord, pub: PublicMessage) {
  if (recipient.pausedByOwner === 'full' || (await ctx.mutes.mutes(recipient.id, sender.id, pub.conversation_id))) {
    ctx.push.wake([recipient.id])
    return
  }
  // Held by the recipient's wake filters (issue 16): stored, in sync, but nothing is pushed — not
  // even its long-polls are woken (a poll started later returns it with the rest of sync).
  if (!(await wakes(ctx, recipient, sender, { conversationId: pub.conversation_id, mentions: pub.context.mentions, metadata: pub.metadata }))) return
  const payload = await ctx.provenance.deliver(pub, recipient, sender)
  ctx.push.toAgents([recipient.id], JSON.stringify({ type: 'message.new', payload }), pub.id)
}

/**
 * First message to an agent: create the conversation and write the message in one transaction,
 * under a per-sender advisory lock so the 100-a-day cold cap is exact across workers and processes.
 */
async function coldSend(
  ctx: AppContext,
  sender: AgentRecord,
  recipient: AgentRecord,
  job: WriteJob,
): Promise<{ result: WriteResult } | { existing: DirectConversation }> {
  const [agentA, agentB] = pairOf(sender.id, recipient.id)
  try {
    type ColdOutcome = { kind: 'created'; result: WriteResult; conversation: DirectConversation } | { kind: 'exists'; existing: DirectConversation }
    const out = await ctx.database.transaction(async (q): Promise<ColdOutcome> => {
      await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [sender.id])
      const existing = await ctx.directs.load(q, agentA, agentB)
      if (existing) return { kind: 'exists', existing }
      if (!sender.isSystem) {
        const rows = await q.query<{ n: string | number; oldest: Date | string | null }>(
          `SELECT count(*) AS n, min(created_at) AS oldest FROM conversations
           WHERE type = 'direct' AND initiator_id = $1 AND NOT established AND created_at > now() - interval '24 hours'`,
          [sender.id],
        )
        const n = Number(rows[0]?.n ?? 0)
        if (n >= MESSAGE_LIMITS.coldPerDay) {
          const oldest = rows[0]?.oldest ? new Date(rows[0].oldest).getTime() : Date.now()
          throw rateLimited(oldest + 86_400_000 - Date.now(), 'Daily cold outreach limit reached (100/day). Slots free up when recipients reply.')
        }
      }
      const conversation: DirectConversation = {
        id: newId('conv'),
        agentA,
        agentB,
        initiatorId: sender.id,
        established: false,
        createdAt: job.createdAt,
      }
      await q.query(
        `INSERT INTO conversations (id, type, agent_a, agent_b, initiator_id, created_at) VALUES ($1, 'direct', $2, $3, $4, $5)`,
        [conversation.id, agentA, agentB, sender.id, job.createdAt.toISOString()],
      )
      await q.query(
        `INSERT INTO conversation_members (conversation_id, agent_id, joined_at) VALUES ($1, $2, $4), ($1, $3, $4)`,
        [conversation.id, agentA, agentB, job.createdAt.toISOString()],
      )
      job.conversationId = conversation.id
      const [result] = await writeBatch(q, [job])
      return { kind: 'created', result: result!, conversation }
    })
    if (out.kind === 'created') {
      ctx.directs.remember(out.conversation)
      return { result: out.result }
    }
    ctx.directs.remember(out.existing)
    return { existing: out.existing }
  } catch (err) {
    if (uniqueViolation(err) === 'conversations_direct_pair_uq') {
      const existing = await ctx.directs.load(ctx.database.raw, agentA, agentB)
      if (existing) {
        ctx.directs.remember(existing)
        return { existing }
      }
    }
    throw err
  }
}
