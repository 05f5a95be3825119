import { enqueue } from '../../delivery/webhooks/outbox.ts'
import { and, count, eq, ne } from 'drizzle-orm'
import type { AppContext } from '../../context.ts'
import { agents } from '../../db/schema.ts'
import { uniqueViolation } from '../../db/errors.ts'
import { fail } from '../../http/errors.ts'
import { mintApiKey } from '../../lib/crypto.ts'
import { isReservedHandle, isWellFormedHandle } from '../../lib/handles.ts'
import { newId } from '../../lib/ids.ts'
import type { AgentRecord } from '../agents/record.ts'
import { consumeOtp, findPending, issueOtp } from './otp.ts'
import { CLOSE } from '../../realtime/close-codes.ts'
import { recordAudit, type ActorType } from '../../audit/events.ts'
import { dropOutgoing } from '../approvals/outgoing.ts'

export const LIFETIME_REGISTRATIONS_PER_EMAIL = 3

export const normalizeEmail = (email: string) => email.trim().toLowerCase()

export interface RegisterInput {
  email: string
  handle: string
  display_name?: string
  description?: string
}

/** POST /v1/register: checks in the contract's order, then emails a code. */
export async function startRegistration(ctx: AppContext, input: RegisterInput): Promise<string> {
  const email = normalizeEmail(input.email)
  const handle = input.handle
  if (!isWellFormedHandle(handle) || isReservedHandle(handle)) throw fail('INVALID_HANDLE')
  const [handleRow, liveEmail, lifetime, owner] = await Promise.all([
    ctx.db.select({ id: agents.id }).from(agents).where(eq(agents.handle, handle)),
    ctx.db.select({ id: agents.id }).from(agents).where(and(eq(agents.email, email), ne(agents.status, 'deleted'))),
    ctx.db.select({ n: count() }).from(agents).where(eq(agents.email, email)),
    ctx.database.raw.query('SELECT 1 FROM owners WHERE email = $1', [email]),
  ])
  if (handleRow.length > 0) throw fail('HANDLE_TAKEN')
  if (liveEmail.length > 0) throw fail('EMAIL_TAKEN')
  // The original server's email namespaces (contract §21.15): an owner's email is not an agent's.
  if (owner.length > 0) throw fail('EMAIL_IS_OWNER')
  if ((lifetime[0]?.n ?? 0) >= LIFETIME_REGISTRATIONS_PER_EMAIL) throw fail('EMAIL_EXHAUSTED')
  return issueOtp(ctx, {
    purpose: 'register',
    email,
    handle,
    displayName: input.display_name ?? null,
    description: input.description ?? null,
  })
}

/** POST /v1/register/verify: consume the code and create the agent with a fresh key. */
export async function completeRegistration(
  ctx: AppContext,
  pendingId: string,
  code: string,
): Promise<{ agent: AgentRecord; apiKey: string }> {
  const pending = await consumeOtp(ctx, pendingId, 'register', code, fail('EXPIRED', 'Registration expired or invalid. Please start again.'))
  const [lifetime] = await ctx.db.select({ n: count() }).from(agents).where(eq(agents.email, pending.email))
  if ((lifetime?.n ?? 0) >= LIFETIME_REGISTRATIONS_PER_EMAIL) throw fail('EMAIL_EXHAUSTED')
  const { key, hash } = mintApiKey()
  try {
    // The agent and the agent.created webhooks of system-agent subscribers commit together.
    const id = newId('agt')
    const createdAt = new Date()
    await ctx.database.transaction(async (q) => {
      await q.query(`INSERT INTO agents (id, handle, email, display_name, description, api_key_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, [
        id,
        pending.handle!,
        pending.email,
        pending.displayName ?? null,
        pending.description ?? null,
        hash,
        createdAt.toISOString(),
      ])
      const data = { handle: pending.handle!, display_name: pending.displayName ?? null, created_at: createdAt.toISOString() }
      await enqueue(q, 'agent.created', id, data, { systemAgents: true })
      await recordAudit(q, { agentId: id, actorType: 'agent', action: 'agent.created', metadata: { handle: pending.handle! } })
    })
    const [agent] = await ctx.db.select().from(agents).where(eq(agents.id, id))
    return { agent: agent!, apiKey: key }
  } catch (err) {
    // Two verifications raced for the same handle or email: the loser gets the conflict.
    const constraint = uniqueViolation(err)
    if (constraint === 'agents_handle_uq') throw fail('HANDLE_TAKEN')
    if (constraint === 'agents_live_email_uq') throw fail('EMAIL_TAKEN')
    throw err
  }
}

/** POST /v1/agents/recover: always the same answer; a pending id only when a code really went out. */
export async function startRecovery(ctx: AppContext, rawEmail: string): Promise<string | null> {
  const email = normalizeEmail(rawEmail)
  const [agent] = await ctx.db
    .select()
    .from(agents)
    .where(and(eq(agents.email, email), ne(agents.status, 'deleted')))
  if (!agent || agent.isSystem) return null
  try {
    return await issueOtp(ctx, { purpose: 'recover', email, agentId: agent.id })
  } catch (err) {
    // Cooldown, hourly cap and send failures are swallowed: no enumeration through errors.
    ctx.log.info({ err: (err as Error).message }, 'recovery code not sent')
    return null
  }
}

/**
 * Replace an agent's key: new hash stored and any dashboard claim revoked in one transaction
 * (with their audit events), caches dropped everywhere, live sockets closed.
 */
export async function replaceKey(ctx: AppContext, agentId: string, via: 'rotation' | 'recovery' | 'operator' = 'rotation'): Promise<{ handle: string; apiKey: string }> {
  const { key, hash } = mintApiKey()
  const out = await ctx.database.transaction(async (q) => {
    const [row] = await q.query<{ handle: string }>(
      `UPDATE agents SET api_key_hash = $2, updated_at = now() WHERE id = $1 AND status <> 'deleted' RETURNING handle`,
      [agentId, hash],
    )
    if (!row) return null
    const claims = await q.query<{ owner_id: string }>(`DELETE FROM owner_claims WHERE agent_id = $1 RETURNING owner_id`, [agentId])
    // No owner any more: nobody to approve its sends (issue 16.6) — the mode goes, the held sends are rejected.
    const dropped = claims.length > 0 ? await dropOutgoing(q, agentId) : []
    if (claims.length > 0) await q.query(`UPDATE agents SET owner_approval = 'none' WHERE id = $1`, [agentId])
    const actorType: ActorType = via === 'operator' ? 'operator' : 'agent'
    await recordAudit(
      q,
      { agentId, actorType, action: 'agent.key_rotated', metadata: { via } },
      ...claims.map((c) => ({ agentId, ownerId: c.owner_id, actorType, action: 'agent.claim_revoked' as const, metadata: { reason: 'key_rotated' } })),
    )
    return { handle: row.handle, ownerIds: claims.map((c) => c.owner_id), dropped }
  })
  if (!out) throw fail('EXPIRED', 'Recovery request expired. Please start again.')
  const row = out
  await ctx.agents.changed(agentId)
  for (const frame of out.dropped) ctx.push.toAgents([agentId], frame)
  for (const ownerId of out.ownerIds) await ctx.bus.publish({ type: 'owner.claims_changed', ownerId })
  await ctx.bus.publish({ type: 'agent.close_sockets', agentId, ...CLOSE.keyRotated })
  return { handle: row.handle, apiKey: key }
}

export async function completeRecovery(ctx: AppContext, pendingId: string, code: string) {
  const expired = fail('EXPIRED', 'Recovery request expired. Please start again.')
  const pending = await findPending(ctx, pendingId, 'recover')
  if (!pending) throw expired
  const agent = await ctx.agents.get(pending.agentId!)
  if (agent?.isSystem) throw fail('SYSTEM_AGENT_PROTECTED')
  const consumed = await consumeOtp(ctx, pendingId, 'recover', code, expired)
  return replaceKey(ctx, consumed.agentId!, 'recovery')
}

/** POST /v1/agents/:handle/rotate-key — the caller is already authenticated and owns the handle. */
export async function startRotation(ctx: AppContext, agent: AgentRecord): Promise<string> {
  if (agent.isSystem) throw fail('SYSTEM_AGENT_PROTECTED')
  return issueOtp(ctx, { purpose: 'rotate', email: agent.email, agentId: agent.id })
}

export async function completeRotation(ctx: AppContext, agent: AgentRecord, pendingId: string, code: string) {
  const expired = fail('EXPIRED', 'Rotation request expired. Please start again.')
  const pending = await findPending(ctx, pendingId, 'rotate')
  if (!pending) throw expired
  if (pending.agentId !== agent.id) throw fail('FORBIDDEN', 'This rotation request belongs to another agent')
  if (agent.isSystem) throw fail('SYSTEM_AGENT_PROTECTED')
  await consumeOtp(ctx, pendingId, 'rotate', code, expired)
  return replaceKey(ctx, agent.id)
}
