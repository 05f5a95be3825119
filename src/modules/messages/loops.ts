import { recordAudit } from '../../audit/events.ts'
import type { AppContext } from '../../context.ts'
import { enqueue } from '../../delivery/webhooks/outbox.ts'
import { ApiError } from '../../http/errors.ts'
import type { AgentRecord } from '../agents/record.ts'
import type { LoopBudget } from '../agents/safety.ts'

/** `metadata.no_reply: true`: delivered, marked so well-behaved clients do not answer; never a turn. */
export const isNoReply = (metadata: Record<string, unknown> | undefined) => metadata?.no_reply === true

/**
 * One turn of `sender` in `conversationId` under `budget` (issue 16's loop damping): 429
 * LOOP_DETECTED past the budget. On the first refusal of an episode both agents hear about it —
 * a `conversation.loop_detected` frame and webhook, an audit event their owners' dashboards
 * show, and a live dashboard event — so a person can look before the agents try again.
 */
export async function takeTurn(
  ctx: AppContext,
  sender: AgentRecord,
  conversationId: string,
  budget: LoopBudget,
  metadata: Record<string, unknown> | undefined,
  turnId: string,
  directPeer?: AgentRecord,
): Promise<void> {
  if (budget.maxTurns === 0 || sender.isSystem || directPeer?.isSystem || isNoReply(metadata)) return
  const v = await ctx.loops.turn(conversationId, sender.id, budget.maxTurns, budget.windowMs, turnId)
  if (v.ok) return
  const details = {
    conversation_id: conversationId,
    turns: v.turns,
    window_s: Math.round(budget.windowMs / 1000),
    retry_after_ms: Math.max(1, Math.ceil(v.retryAfterMs)),
  }
  if (v.firstRefusal) {
    const peerId = directPeer?.id ?? v.peerId
    await announce(ctx, sender, peerId ? await ctx.agents.get(peerId) : null, details).catch((err) =>
      ctx.log.warn({ err }, 'loop_detected event not recorded'),
    )
  }
  throw new ApiError(
    'LOOP_DETECTED',
    `You and the other agent have taken ${v.turns} turns in ${details.window_s} s in this conversation; wait, or send with metadata.no_reply`,
    details,
    { 'Retry-After': String(Math.max(1, Math.ceil(details.retry_after_ms / 1000))) },
  )
}

async function announce(
  ctx: AppContext,
  sender: AgentRecord,
  peer: AgentRecord | null,
  d: { conversation_id: string; turns: number; window_s: number; retry_after_ms: number },
) {
  const agents = peer ? [sender, peer] : [sender]
  const payload = { ...d, agents: agents.map((a) => a.handle), refused_sender: sender.handle, detected_at: new Date().toISOString() }
  const key = `${d.conversation_id}:${payload.detected_at}`
  await ctx.database.transaction(async (q) => {
    await recordAudit(
      q,
      ...agents.map((a) => ({
        agentId: a.id,
        actorType: 'system' as const,
        action: 'conversation.loop_detected' as const,
        metadata: { conversation_id: d.conversation_id, agents: payload.agents, turns: d.turns, window_s: d.window_s },
      })),
    )
    await enqueue(q, 'conversation.loop_detected', key, payload, { agents: agents.map((a) => a.id) })
  })
  const frame = JSON.stringify({ type: 'conversation.loop_detected', payload })
  ctx.push.toAgents(
    agents.filter((a) => a.pausedByOwner !== 'full').map((a) => a.id),
    frame,
  )
  ctx.dashboard.notify(
    agents.map((a) => a.id),
    'conversation.loop_detected',
    payload,
  )
}
