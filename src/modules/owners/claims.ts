import { recordAudit } from '../../audit/events.ts'
import type { AppContext } from '../../context.ts'
import { fail } from '../../http/errors.ts'
import { getMeta } from '../../http/request-meta.ts'
import { sha256Hex } from '../../lib/crypto.ts'
import { normalizeHandle } from '../../lib/handles.ts'
import type { AgentRecord } from '../agents/record.ts'
import { avatarUrl } from '../agents/shapes.ts'
import { checkAgentQuota } from '../../limits/quotas.ts'
import { approvalModeOf, dropOutgoing } from '../approvals/outgoing.ts'

/** Contract §15/§17: five failed claims on one agent in ten minutes lock further attempts. */
export const CLAIM_FAILURES = { limit: 5, windowMs: 600_000 } as const

export type PauseMode = 'send' | 'full'

export function claimedAgentBody(ctx: AppContext, a: AgentRecord, claimedAt: Date | string) {
  return {
    handle: a.handle,
    display_name: a.displayName,
    description: a.description,
    avatar_url: avatarUrl(ctx.config.publicUrl, a.avatarKey),
    status: a.status,
    paused_by_owner: a.pausedByOwner as 'none' | PauseMode,
    /** Approval before send (issue 16.6): none | all | cold. */
    approval_mode: approvalModeOf(a),
    claimed_at: new Date(claimedAt).toISOString(),
    created_at: a.createdAt.toISOString(),
  }
}

/**
 * A claimed agent of this owner by handle, or 404 (unknown, deleted, or someone else's: the
 * dashboard never tells which).
 */
export async function ownedAgent(ctx: AppContext, ownerId: string, rawHandle: string, notFound = fail('AGENT_NOT_FOUND')) {
  const a = await ctx.agents.getByHandle(normalizeHandle(rawHandle))
  if (!a || a.status === 'deleted') throw notFound
  const rows = await ctx.database.raw.query<{ claimed_at: Date | string }>(`SELECT claimed_at FROM owner_claims WHERE agent_id = $1 AND owner_id = $2`, [a.id, ownerId])
  if (!rows[0]) throw notFound
  return { agent: a, claimedAt: rows[0].claimed_at }
}

/** Every agent this owner has claimed, oldest claim first. */
export async function ownedAgents(ctx: AppContext, ownerId: string) {
  const rows = await ctx.database.raw.query<{ agent_id: string; claimed_at: Date | string }>(
    `SELECT agent_id, claimed_at FROM owner_claims WHERE owner_id = $1 ORDER BY claimed_at, agent_id`,
    [ownerId],
  )
  const out = []
  for (const r of rows) {
    const a = await ctx.agents.get(r.agent_id)
    if (a && a.status !== 'deleted') out.push({ agent: a, claimedAt: r.claimed_at })
  }
  return out
}

/**
 * POST /dashboard/agents/claim: the owner proves control by pasting the agent's key. One owner
 * per agent (the claim row's primary key decides a race); the agent is never notified. A claim on
 * someone else's agent is recorded on that agent's timeline for its owner to see.
 */
export async function claim(ctx: AppContext, ownerId: string, apiKey: string, req: Request) {
  const agent = await ctx.agents.byKeyHash(sha256Hex(apiKey))
  if (!agent || agent.status === 'deleted') throw fail('INVALID_API_KEY')
  if (agent.isSystem) throw fail('SYSTEM_AGENT_PROTECTED', 'System agents cannot be claimed')
  const won = await ctx.database.transaction(async (q) => {
    // The plan's agent quota, counted under the owner row's lock: concurrent claims by one owner
    // queue here, so the quota cannot be overrun.
    if (ctx.config.quotas.agentsPerOwner > 0) {
      await q.query(`SELECT 1 FROM owners WHERE id = $1 FOR UPDATE`, [ownerId])
      const mine = await q.query(`SELECT 1 FROM owner_claims WHERE agent_id = $1 AND owner_id = $2`, [agent.id, ownerId])
      if (mine.length === 0) await checkAgentQuota(q, ctx.config.quotas.agentsPerOwner, ownerId)
    }
    const rows = await q.query<{ claimed_at: Date | string }>(
      `INSERT INTO owner_claims (agent_id, owner_id) VALUES ($1, $2) ON CONFLICT (agent_id) DO NOTHING RETURNING claimed_at`,
      [agent.id, ownerId],
    )
    if (rows[0]) await recordAudit(q, { agentId: agent.id, ownerId, actorType: 'owner', action: 'agent.claimed', metadata: {} })
    return rows[0]?.claimed_at ?? null
  })
  if (won) {
    // Cached facts about the agent (its provenance's `claimed`) follow the claim everywhere.
    await ctx.agents.changed(agent.id)
    await ctx.bus.publish({ type: 'owner.claims_changed', ownerId })
    return claimedAgentBody(ctx, agent, won)
  }
  const [incumbent] = await ctx.database.raw.query<{ owner_id: string; claimed_at: Date | string }>(
    `SELECT owner_id, claimed_at FROM owner_claims WHERE agent_id = $1`,
    [agent.id],
  )
  // Claimed meanwhile and released again: a rare race; the caller can simply retry.
  if (!incumbent) throw fail('ALREADY_CLAIMED')
  if (incumbent.owner_id === ownerId) return claimedAgentBody(ctx, agent, incumbent.claimed_at)
  const attempts = await ctx.counters.fixed(`claimfail:${agent.id}`, CLAIM_FAILURES.limit, CLAIM_FAILURES.windowMs)
  if (!attempts.allowed) {
    throw fail('TOO_MANY_CLAIMS', undefined, { retry_after_ms: attempts.retryAfterMs }, { 'Retry-After': String(Math.max(1, Math.ceil(attempts.retryAfterMs / 1000))) })
  }
  await recordAudit(ctx.database.raw, {
    agentId: agent.id,
    ownerId: incumbent.owner_id,
    actorType: 'owner',
    action: 'agent.claim_attempted',
    metadata: { ip: getMeta(req).ip, user_agent: req.headers.get('user-agent') ?? null },
  })
  throw fail('ALREADY_CLAIMED')
}

/**
 * DELETE /dashboard/agents/:handle. Releasing also lifts a pause and clears the approval mode (an
 * unowned agent has no one to unpause it or approve its sends); its sends still waiting for
 * approval are rejected (`message.rejected`, reason `claim_released`).
 */
export async function release(ctx: AppContext, ownerId: string, rawHandle: string): Promise<void> {
  const { agent } = await ownedAgent(ctx, ownerId, rawHandle, fail('CLAIM_NOT_FOUND'))
  const wasFull = agent.pausedByOwner === 'full'
  const released = await ctx.database.transaction(async (q) => {
    const rows = await q.query(`DELETE FROM owner_claims WHERE agent_id = $1 AND owner_id = $2 RETURNING 1`, [agent.id, ownerId])
    if (rows.length === 0) return null
    await q.query(`UPDATE agents SET paused_by_owner = 'none', owner_approval = 'none', updated_at = now() WHERE id = $1`, [agent.id])
    await recordAudit(q, { agentId: agent.id, ownerId, actorType: 'owner', action: 'agent.released', metadata: {} })
    return dropOutgoing(q, agent.id)
  })
  if (!released) throw fail('CLAIM_NOT_FOUND')
  await ctx.agents.changed(agent.id)
  for (const frame of released) ctx.push.toAgents([agent.id], frame)
  await ctx.bus.publish({ type: 'owner.claims_changed', ownerId })
  if (wasFull) await ctx.bus.publish({ type: 'agent.redrain', agentId: agent.id })
}

/**
 * Pause (`send` or `full`) or unpause (`none`). The row change and its audit event commit
 * together; then every worker and process drops its cached copy (the send path, sync, pushes and
 * the webhook outbox all read `paused_by_owner`), and an agent leaving `full` has its open
 * sockets drained of what was held back.
 */
export async function setPause(ctx: AppContext, ownerId: string, rawHandle: string, mode: 'none' | PauseMode) {
  const { agent } = await ownedAgent(ctx, ownerId, rawHandle)
  const before = agent.pausedByOwner
  await ctx.database.transaction(async (q) => {
    // Under the claim row's lock, so a concurrent release cannot slip between check and update.
    const held = await q.query(`SELECT 1 FROM owner_claims WHERE agent_id = $1 AND owner_id = $2 FOR UPDATE`, [agent.id, ownerId])
    if (held.length === 0) throw fail('AGENT_NOT_FOUND')
    await q.query(`UPDATE agents SET paused_by_owner = $2, updated_at = now() WHERE id = $1`, [agent.id, mode])
    if (before !== mode) {
      await recordAudit(q, {
        agentId: agent.id,
        ownerId,
        actorType: 'owner',
        action: mode === 'none' ? 'agent.unpaused' : 'agent.paused',
        metadata: mode === 'none' ? { previous: before } : { mode, previous: before },
      })
    }
  })
  await ctx.agents.changed(agent.id)
  if (before === 'full' && mode !== 'full') await ctx.bus.publish({ type: 'agent.redrain', agentId: agent.id })
  return { handle: agent.handle, paused_by_owner: mode }
}
