import type { AppContext } from '../../context.ts'
import { agentNotFound, fail, rateLimited } from '../../http/errors.ts'
import { newId } from '../../lib/ids.ts'
import { isVisible, type AgentRecord } from '../agents/record.ts'
import { avatarUrl } from '../agents/shapes.ts'
import { DEFAULT_CONTRACT, PRESETS, setContract, type ContractName } from '../contracts/presets.ts'
import { pairOf } from '../conversations/direct-cache.ts'
import * as q from './queries.ts'
import { hashInviteCode, inviteState, INVITE_ID_PATTERN, INVITES, isInviteCode, joinUrl, mintInviteCode, STATE_ERRORS, type InviteState } from './rules.ts'

const notFound = () => fail('INVITE_NOT_FOUND')

/** POST /v1/invites: 50 per agent per rolling 24 hours, each valid 24 hours. */
export async function createInvite(ctx: AppContext, me: AgentRecord) {
  const cap = await ctx.counters.rolling(`conninv:${me.id}`, INVITES.perDay, 86_400_000)
  if (!cap.allowed) throw rateLimited(cap.retryAfterMs, `Daily invite limit reached (${INVITES.perDay} per 24 hours)`)
  const { code, hash } = mintInviteCode()
  const row = await q.insertInvite(ctx.database.raw, { id: newId('inv'), codeHash: hash, inviterId: me.id, ttlMs: INVITES.ttlMs })
  return { id: row.id, invite_code: code, join_url: joinUrl(ctx.config.publicUrl, code), expires_at: row.expiresAt.toISOString() }
}

export async function listPending(ctx: AppContext, me: AgentRecord) {
  const rows = await q.pendingInvites(ctx.database.raw, me.id, INVITES.perDay * 2)
  return rows.map((r) => ({ id: r.id, created_at: r.createdAt.toISOString(), expires_at: r.expiresAt.toISOString() }))
}

/**
 * DELETE /v1/invites/:code — by the code or by the invite id, the inviter's own only (anyone
 * else's is a 404, as is an unknown code). Under the row lock: a revoke racing an accept either
 * wins (the accept then sees INVITE_REVOKED) or finds the invite used (INVITE_USED).
 */
export async function revokeInvite(ctx: AppContext, me: AgentRecord, codeOrId: string): Promise<void> {
  const byId = INVITE_ID_PATTERN.test(codeOrId)
  if (!byId && !isInviteCode(codeOrId)) throw notFound()
  await ctx.database.transaction(async (tx) => {
    const row = byId ? await q.ownInviteById(tx, me.id, codeOrId) : await q.inviteByHash(tx, hashInviteCode(codeOrId), true)
    if (!row || row.inviterId !== me.id) throw notFound()
    const state = inviteState(row)
    if (state !== 'pending') throw fail(STATE_ERRORS[state])
    await q.markRevoked(tx, row.id)
  })
}

/**
 * POST /v1/invites/:code/accept. One transaction, under the invite's row lock (a second accept
 * waits, then finds it used): the invite is marked used, the pair's direct conversation is
 * created established or flagged established, both agents land in each other's contact book, and
 * both directions of the connection are put on the chosen preset. Nothing of it exists unless all
 * of it committed. Then every worker's cached copy of the pair's conversation and relations is
 * dropped, as after a reply that establishes a conversation.
 */
export async function acceptInvite(ctx: AppContext, me: AgentRecord, code: string, contract: ContractName = DEFAULT_CONTRACT) {
  if (!isInviteCode(code)) throw notFound()
  const hash = hashInviteCode(code)
  // A first look outside the transaction: the inviter's record comes from the agent cache.
  const peek = await q.inviteByHash(ctx.database.raw, hash)
  if (!peek) throw notFound()
  if (peek.inviterId === me.id) throw fail('VALIDATION_ERROR', 'You cannot accept your own invite')
  const inviter = await ctx.agents.get(peek.inviterId)
  const [agentA, agentB] = pairOf(me.id, peek.inviterId)

  const conversationId = await ctx.database.transaction(async (tx) => {
    const row = await q.inviteByHash(tx, hash, true)
    if (!row) throw notFound()
    const state = inviteState(row)
    if (state !== 'pending') throw fail(STATE_ERRORS[state])
    if (!inviter || !isVisible(inviter)) throw agentNotFound(inviter?.handle ?? 'unknown')
    if (await q.blockedEitherWay(tx, me.id, inviter.id)) throw fail('BLOCKED')
    await q.markAccepted(tx, row.id, me.id, contract)
    const conv = await q.establishDirect(tx, { newId: newId('conv'), agentA, agentB, initiatorId: inviter.id })
    await q.addMutualContacts(tx, agentA, agentB)
    await setContract(tx, agentA, agentB, contract)
    await setContract(tx, agentB, agentA, contract)
    return conv.id
  })
  await ctx.directs.changed(agentA, agentB)
  await ctx.relations.changed(agentA, agentB)
  return {
    contact: {
      handle: inviter!.handle,
      display_name: inviter!.displayName,
      description: inviter!.description,
      avatar_url: avatarUrl(ctx.config.publicUrl, inviter!.avatarKey),
    },
    conversation_id: conversationId,
    contract,
    permissions: { ...PRESETS[contract] },
  }
}

export type LookupState = InviteState | 'not_found'

/** What the setup page says about a code: its state and the inviter's handle (never anything the inviter wrote). */
export async function lookupForSetup(ctx: AppContext, code: string): Promise<{ state: LookupState; inviterHandle?: string; expiresAt?: Date }> {
  if (!isInviteCode(code)) return { state: 'not_found' }
  const row = await q.inviteByHash(ctx.database.raw, hashInviteCode(code))
  if (!row) return { state: 'not_found' }
  const inviter = await ctx.agents.get(row.inviterId)
  if (!inviter || !isVisible(inviter)) return { state: 'not_found' }
  return { state: inviteState(row), inviterHandle: inviter.handle, expiresAt: row.expiresAt }
}
