import { loopBudget } from '../agents/safety.ts'
import { takeTurn } from '../messages/loops.ts'
import { wakes } from '../messages/wake.ts'
import { enqueue } from '../../delivery/webhooks/outbox.ts'
import { spendMessageQuota } from '../../limits/quotas.ts'
import { noteLimit } from '../../limits/rate-window.ts'
import type { AppContext } from '../../context.ts'
import { uniqueViolation } from '../../db/errors.ts'
import { agentNotFound, fail, rateLimited } from '../../http/errors.ts'
import { normalizeHandle } from '../../lib/handles.ts'
import { newId } from '../../lib/ids.ts'
import { takeSenderToken } from '../../limits/send-rate.ts'
import { isVisible, type AgentRecord } from '../agents/record.ts'
import { publicMessage, sendOutcome, type SendOutcome, type StoredMessage } from '../messages/shape.ts'
import type { SendBody } from '../messages/send.ts'
import type { WriteJob } from '../messages/writer.ts'
import { departAll } from '../../delivery/cursors.ts'
import { expiresAt } from '../messages/expiry.ts'
import { deletedError, goneFor } from './gate.ts'
import { GROUP_LIMITS, groupFacts, type GroupRow } from './store.ts'

// ─── Wire shapes (contract §10.2) ─────────────────────────────────────────────────────────────

export async function groupBody(ctx: AppContext, g: GroupRow) {
  const creator = await ctx.agents.get(g.createdBy)
  return {
    id: g.id,
    name: g.name,
    description: g.description,
    avatar_url: g.avatarUrl,
    created_by: creator?.handle ?? 'unknown',
    settings: { who_can_invite: 'admin' as const },
    member_count: g.members.length,
    created_at: g.createdAt.toISOString(),
    last_message_at: g.lastMessageAt?.toISOString() ?? null,
  }
}

export async function detailBody(ctx: AppContext, g: GroupRow, meId: string) {
  const members = await Promise.all(
    g.members.map(async (m) => {
      const a = await ctx.agents.get(m.agentId)
      return { handle: a?.handle ?? 'unknown', display_name: a?.displayName ?? null, role: m.role, joined_at: m.joinedAt.toISOString() }
    }),
  )
  const mine = g.members.find((m) => m.agentId === meId)
  return { ...(await groupBody(ctx, g)), members, your_role: mine?.role ?? 'member' }
}

async function invitationBody(ctx: AppContext, invite: { id: string; groupId: string; inviterId: string; createdAt: Date }, g: GroupRow) {
  const inviter = await ctx.agents.get(invite.inviterId)
  return {
    id: invite.id,
    group_id: g.id,
    group_name: g.name,
    group_description: g.description,
    group_avatar_url: g.avatarUrl,
    group_member_count: g.members.length,
    inviter_handle: inviter?.handle ?? 'unknown',
    created_at: invite.createdAt.toISOString(),
  }
}

// ─── Access ───────────────────────────────────────────────────────────────────────────────────

/**
 * Every group route's gate: unknown group or not a member → masked 404 `GROUP_NOT_FOUND`; a former
 * member of a deleted group → 410 `GROUP_DELETED` with its details.
 */
export async function memberOf(ctx: AppContext, groupId: string, me: AgentRecord, fresh = false) {
  const g = fresh ? await ctx.groups.fresh(groupId) : await ctx.groups.get(groupId)
  if (!g) throw fail('GROUP_NOT_FOUND')
  if (g.deletedAt) throw (await goneFor(ctx.database.raw, ctx.agents, g, me.id)) ?? fail('GROUP_NOT_FOUND')
  const member = g.members.find((m) => m.agentId === me.id)
  if (!member) throw fail('GROUP_NOT_FOUND')
  return { g, member }
}

async function adminOf(ctx: AppContext, groupId: string, me: AgentRecord) {
  const r = await memberOf(ctx, groupId, me, true)
  if (r.member.role !== 'admin') throw fail('FORBIDDEN', 'Only group admins can do that')
  return r
}

// ─── Messages into groups (contract §10.6) and system messages (§10.8) ─────────────────────

/**
 * Write one group message (one row: every active member but the sender receives it through
 * their cursor) and push it. Members at the 10,000 backlog cap are skipped — recorded as delivery
 * exceptions in the same statement; muted and fully paused members receive it but get no live frame.
 */
async function writeToGroup(ctx: AppContext, g: GroupRow, job: Omit<WriteJob, 'skipped'>) {
  const candidates = g.members.filter((m) => m.agentId !== job.senderId).map((m) => m.agentId)
  const slots = await ctx.backlog.reserveMany(candidates)
  const recipients: string[] = []
  const skipped: string[] = []
  for (const id of candidates) {
    if (slots.get(id)?.ok) recipients.push(id)
    else skipped.push(id)
  }
  let result
  try {
    result = await ctx.writer.write({ ...job, skipped })
  } catch (err) {
    for (const id of recipients) ctx.backlog.release(id)
    throw err
  }
  if (result.replay) {
    for (const id of recipients) ctx.backlog.release(id)
    return { message: result.message, replay: true, skipped: [] as string[] }
  }
  const pub = await publicMessage(ctx.agents, result.message, groupFacts(g))
  const live: AgentRecord[] = []
  const quiet: string[] = []
  const sender = await ctx.agents.get(job.senderId)
  const facts = { conversationId: g.id, mentions: pub.context.mentions, metadata: job.metadata }
  for (const id of recipients) {
    const a = await ctx.agents.get(id)
    if (!a) continue
    if (a.pausedByOwner === 'full' || (await ctx.mutes.mutes(id, job.senderId, g.id))) quiet.push(id)
    // Held by its wake filters (quiet hours, mentions only): stored, not pushed, polls not woken.
    else if (sender && !(await wakes(ctx, a, sender, facts))) continue
    else live.push(a)
  }
  // Provenance is per recipient (is_contact, wrapping): at most four frames, each serialised once.
  for (const v of live.length > 0 ? await ctx.provenance.variants(pub, live, sender ?? undefined) : []) {
    ctx.push.toAgents(v.ids, JSON.stringify({ type: 'message.new', payload: v.message }), result.message.id)
  }
  // Stored for them without a frame: their long-polls look again.
  ctx.push.wake(quiet)
  ctx.dashboard.observe(result.message, [job.senderId, ...recipients])
  if (job.expiresAt) ctx.expiry.schedule(job.expiresAt)
  const skippedHandles = (await Promise.all(skipped.map((id) => ctx.agents.get(id)))).map((a) => a?.handle ?? 'unknown')
  return { message: result.message, replay: false, skipped: skippedHandles, pub }
}

export async function systemMessage(ctx: AppContext, groupId: string, senderId: string, data: Record<string, unknown>): Promise<StoredMessage> {
  const g = await ctx.groups.fresh(groupId)
  if (!g) throw fail('GROUP_NOT_FOUND')
  const id = newId('msg')
  const out = await writeToGroup(ctx, g, {
    id,
    conversationId: g.id,
    senderId,
    clientMsgId: `sys_${id}`,
    type: 'system',
    content: { data: { schema_version: 1, ...data } },
    metadata: {},
    createdAt: new Date(),
  })
  return out.message
}

/** POST /v1/messages with a `grp_` conversation_id, checks in the contract's order. */
export async function sendToGroup(ctx: AppContext, sender: AgentRecord, body: SendBody, content: Record<string, unknown>): Promise<SendOutcome> {
  const g = await ctx.groups.get(body.conversation_id!)
  if (!g) throw fail('GROUP_NOT_FOUND')
  if (g.deletedAt) throw (await goneFor(ctx.database.raw, ctx.agents, g, sender.id)) ?? fail('GROUP_NOT_FOUND')
  if (sender.pausedByOwner !== 'none') throw fail('AGENT_PAUSED_BY_OWNER')
  if (!g.members.some((m) => m.agentId === sender.id)) throw fail('GROUP_NOT_FOUND')
  const admittedAt = await takeSenderToken(ctx.sendRate, sender)
  // Same instant as the sender's token: one message, one second, in both buckets and in created_at.
  const group = await ctx.sendRate.take(`group:${g.id}`, GROUP_LIMITS.messagesPerSecond, admittedAt.getTime())
  if (!group.ok) throw rateLimited(group.retryAfterMs, 'This group is receiving too many messages per second')
  const msgId = newId('msg')
  await takeTurn(ctx, sender, g.id, loopBudget(sender), body.metadata, msgId)
  await spendMessageQuota(ctx, sender)
  const out = await writeToGroup(ctx, g, {
    id: msgId,
    conversationId: g.id,
    senderId: sender.id,
    clientMsgId: body.client_msg_id,
    type: body.type ?? 'text',
    content,
    metadata: body.metadata ?? {},
    createdAt: admittedAt,
    expiresAt: expiresAt(body.metadata, admittedAt),
  })
  const pub = out.pub ?? (await publicMessage(ctx.agents, out.message, groupFacts(g), sender))
  const result = sendOutcome(pub, out.replay ? 200 : 201)
  if (out.skipped.length > 0) result.body.skipped_recipients = out.skipped
  return result
}

// ─── Membership changes ───────────────────────────────────────────────────────────────────────

/** Add `agentId` as an active member at the next seq (the join point), under the group's row lock. */
async function join(ctx: AppContext, groupId: string, agentId: string, role: 'admin' | 'member') {
  await ctx.database.transaction(async (q) => {
    const [row] = await q.query<{ last_seq: string | number }>(`SELECT last_seq FROM conversations WHERE id = $1 FOR UPDATE`, [groupId])
    const active = await q.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM conversation_members WHERE conversation_id = $1 AND left_at IS NULL`,
      [groupId],
    )
    if (Number(active[0]?.n ?? 0) >= GROUP_LIMITS.maxMembers) throw fail('GROUP_FULL')
    await q.query(
      `INSERT INTO conversation_members (conversation_id, agent_id, role, joined_seq, joined_at)
       VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (conversation_id, agent_id) DO UPDATE
         SET role = EXCLUDED.role, joined_seq = EXCLUDED.joined_seq, joined_at = now(), left_at = NULL, hidden_seq = NULL`,
      [groupId, agentId, role, Number(row!.last_seq) + 1],
    )
  })
  await ctx.groups.changed(groupId)
}

/** Leave or removal: inactive from now on; what was still stored there no longer counts. */
async function depart(ctx: AppContext, groupId: string, agentId: string) {
  for (const d of await departAll(ctx.database.raw, groupId, [agentId])) if (d.released > 0) ctx.backlog.release(d.agentId, d.released)
  await ctx.groups.changed(groupId)
}

export type AddOutcome = { handle: string; outcome: 'invited' | 'already_member'; invite_id?: string }

/**
 * Consent-gated add (contract §10.3): always a pending invite (or the existing one), subject to
 * the invitee's invite policy, blocks, the group's size and the inviter's 50 invites a day.
 */
export async function addMember(ctx: AppContext, g: GroupRow, inviter: AgentRecord, rawHandle: string): Promise<AddOutcome> {
  const handle = normalizeHandle(rawHandle)
  if (handle === inviter.handle) throw fail('VALIDATION_ERROR', 'You cannot invite yourself')
  const target = await ctx.agents.getByHandle(handle)
  if (!target || !isVisible(target)) throw agentNotFound(handle)
  if (g.members.some((m) => m.agentId === target.id)) return { handle, outcome: 'already_member' }
  if (await ctx.relations.blockedEitherWay(inviter.id, target.id)) throw fail('BLOCKED')
  if (target.groupInvitePolicy === 'contacts_only' && !(await ctx.relations.hasContact(target.id, inviter.id))) throw fail('INBOX_RESTRICTED')
  if (g.members.length >= GROUP_LIMITS.maxMembers) throw fail('GROUP_FULL')
  const existing = await ctx.database.raw.query<{ id: string }>(`SELECT id FROM group_invites WHERE group_id = $1 AND invitee_id = $2`, [g.id, target.id])
  if (existing[0]) return { handle, outcome: 'invited', invite_id: existing[0].id }
  const cap = await ctx.counters.fixed(`invites:${inviter.id}`, GROUP_LIMITS.invitesPerDay, 86_400_000)
  noteLimit(GROUP_LIMITS.invitesPerDay, cap)
  if (!cap.allowed) throw rateLimited(cap.retryAfterMs, 'Daily group-invite limit reached (50/day)')
  const invite = { id: newId('gri'), groupId: g.id, inviterId: inviter.id, createdAt: new Date() }
  const body = await invitationBody(ctx, invite, g)
  try {
    // The invite and the invitee's group.invite.received webhook commit together.
    await ctx.database.transaction(async (q) => {
      await q.query(`INSERT INTO group_invites (id, group_id, invitee_id, inviter_id, created_at) VALUES ($1, $2, $3, $4, $5)`, [
        invite.id,
        g.id,
        target.id,
        inviter.id,
        invite.createdAt.toISOString(),
      ])
      await enqueue(q, 'group.invite.received', invite.id, body, { agents: [target.id] })
    })
  } catch (err) {
    if (uniqueViolation(err) === null) throw err
    const again = await ctx.database.raw.query<{ id: string }>(`SELECT id FROM group_invites WHERE group_id = $1 AND invitee_id = $2`, [g.id, target.id])
    return { handle, outcome: 'invited', invite_id: again[0]?.id }
  }
  if (target.pausedByOwner !== 'full') {
    ctx.push.toAgents([target.id], JSON.stringify({ type: 'group.invite.received', payload: body }))
  }
  return { handle, outcome: 'invited', invite_id: invite.id }
}

export async function createGroup(
  ctx: AppContext,
  me: AgentRecord,
  body: { name: string; description?: string | null; avatar_url?: string | null; member_handles?: string[] },
) {
  const id = newId('grp')
  await ctx.database.transaction(async (q) => {
    await q.query(
      `INSERT INTO conversations (id, type, name, description, avatar_url, created_by) VALUES ($1, 'group', $2, $3, $4, $5)`,
      [id, body.name, body.description ?? null, body.avatar_url ?? null, me.id],
    )
    await q.query(`INSERT INTO conversation_members (conversation_id, agent_id, role, joined_seq) VALUES ($1, $2, 'admin', 1)`, [id, me.id])
  })
  const g = (await ctx.groups.fresh(id))!
  const handles = [...new Set((body.member_handles ?? []).map(normalizeHandle))].filter((h) => h !== me.handle)
  const results: AddOutcome[] = []
  for (const h of handles) {
    try {
      results.push(await addMember(ctx, g, me, h))
    } catch {
      // Handles that fail (unknown, blocked, policy, cap) are silently left out (contract §10.4).
    }
  }
  return { group: await detailBody(ctx, g, me.id), add_results: results }
}

export async function updateGroup(
  ctx: AppContext,
  me: AgentRecord,
  groupId: string,
  body: { name?: string; description?: string | null; avatar_url?: string | null },
) {
  const { g } = await adminOf(ctx, groupId, me)
  const changes: Record<string, unknown>[] = []
  const sets: string[] = []
  const params: unknown[] = [groupId]
  if (body.name !== undefined && body.name !== g.name) {
    params.push(body.name)
    sets.push(`name = $${params.length}`)
    changes.push({ event: 'name_changed', new_name: body.name, actor_handle: me.handle })
  }
  if (body.description !== undefined && body.description !== g.description) {
    params.push(body.description)
    sets.push(`description = $${params.length}`)
    changes.push({ event: 'description_changed', actor_handle: me.handle })
  }
  if (body.avatar_url !== undefined && body.avatar_url !== g.avatarUrl) {
    params.push(body.avatar_url)
    sets.push(`avatar_url = $${params.length}`)
    changes.push({ event: 'avatar_changed', actor_handle: me.handle })
  }
  if (sets.length > 0) {
    await ctx.database.raw.query(`UPDATE conversations SET ${sets.join(', ')} WHERE id = $1`, params)
    await ctx.groups.changed(groupId)
    for (const c of changes) await systemMessage(ctx, groupId, me.id, c)
  }
  return detailBody(ctx, (await ctx.groups.fresh(groupId))!, me.id)
}

export async function deleteGroup(ctx: AppContext, me: AgentRecord, groupId: string) {
  const { g, member } = await memberOf(ctx, groupId, me, true)
  if (g.createdBy !== me.id) {
    const creator = await ctx.agents.get(g.createdBy)
    const creatorGone = !creator || creator.status === 'suspended' || creator.status === 'deleted'
    if (!(creatorGone && member.role === 'admin')) throw fail('FORBIDDEN', 'Only the creator can delete this group')
  }
  // The final system message goes to every member first (pushed now), then the group closes.
  await systemMessage(ctx, groupId, me.id, { event: 'group_deleted', actor_handle: me.handle })
  const formers = g.members.map((m) => m.agentId)
  const deletedAt = new Date()
  const info = { group_id: groupId, deleted_by_handle: me.handle, deleted_at: deletedAt.toISOString() }
  await ctx.database.transaction(async (q) => {
    await q.query(`UPDATE conversations SET deleted_at = $2, deleted_by = $3 WHERE id = $1`, [groupId, deletedAt.toISOString(), me.id])
    for (const d of await departAll(q, groupId, null)) if (d.released > 0) ctx.backlog.release(d.agentId, d.released)
    await q.query(`DELETE FROM group_invites WHERE group_id = $1`, [groupId])
    await enqueue(q, 'group.deleted', groupId, info, { agents: formers })
  })
  await ctx.groups.changed(groupId)
  const frame = JSON.stringify({ type: 'group.deleted', payload: info })
  const audience: string[] = []
  for (const id of formers) {
    const a = await ctx.agents.get(id)
    if (a && a.pausedByOwner !== 'full') audience.push(id)
  }
  // group.deleted follows the final message.new on each socket (same push order).
  ctx.push.toAgents(audience, frame)
  return { message: 'Group deleted', deleted_at: info.deleted_at }
}

export async function leaveGroup(ctx: AppContext, me: AgentRecord, groupId: string) {
  const { g, member } = await memberOf(ctx, groupId, me, true)
  await depart(ctx, groupId, me.id)
  await systemMessage(ctx, groupId, me.id, { event: 'member_left', agent_handle: me.handle })
  let promoted: string | null = null
  const rest = g.members.filter((m) => m.agentId !== me.id)
  if (member.role === 'admin' && rest.length > 0 && !rest.some((m) => m.role === 'admin')) {
    const next = rest[0]! // earliest joined (tie: agent id)
    await ctx.database.raw.query(`UPDATE conversation_members SET role = 'admin' WHERE conversation_id = $1 AND agent_id = $2`, [groupId, next.agentId])
    await ctx.groups.changed(groupId)
    const a = await ctx.agents.get(next.agentId)
    promoted = a?.handle ?? null
    await systemMessage(ctx, groupId, next.agentId, { event: 'admin_promoted', agent_handle: promoted, actor_handle: null })
  }
  return { message: 'Left group', promoted_handle: promoted }
}

async function targetMember(ctx: AppContext, g: GroupRow, rawHandle: string) {
  const handle = normalizeHandle(rawHandle)
  const a = await ctx.agents.getByHandle(handle)
  const m = a ? g.members.find((x) => x.agentId === a.id) : undefined
  if (!a || !m) throw fail('NOT_MEMBER')
  return { a, m }
}

export async function removeMember(ctx: AppContext, me: AgentRecord, groupId: string, rawHandle: string) {
  const { g } = await adminOf(ctx, groupId, me)
  if (normalizeHandle(rawHandle) === me.handle) throw fail('VALIDATION_ERROR', 'Use leave to remove yourself')
  const { a } = await targetMember(ctx, g, rawHandle)
  if (a.id === g.createdBy) throw fail('FORBIDDEN', 'The creator cannot be removed')
  await systemMessage(ctx, groupId, me.id, { event: 'member_removed', agent_handle: a.handle, actor_handle: me.handle })
  await depart(ctx, groupId, a.id)
  return { message: 'Member removed' }
}

export async function promoteMember(ctx: AppContext, me: AgentRecord, groupId: string, rawHandle: string) {
  const { g } = await adminOf(ctx, groupId, me)
  const { a, m } = await targetMember(ctx, g, rawHandle)
  if (m.role === 'admin') throw fail('NOT_MEMBER', 'Already an admin')
  await ctx.database.raw.query(`UPDATE conversation_members SET role = 'admin' WHERE conversation_id = $1 AND agent_id = $2`, [groupId, a.id])
  await ctx.groups.changed(groupId)
  await systemMessage(ctx, groupId, me.id, { event: 'admin_promoted', agent_handle: a.handle, actor_handle: me.handle })
  return { message: 'Member promoted to admin' }
}

export async function demoteMember(ctx: AppContext, me: AgentRecord, groupId: string, rawHandle: string) {
  const { g } = await adminOf(ctx, groupId, me)
  const { a, m } = await targetMember(ctx, g, rawHandle)
  if (a.id === g.createdBy) throw fail('FORBIDDEN', 'The creator cannot be demoted')
  if (m.role !== 'admin') throw fail('NOT_ADMIN')
  if (g.members.filter((x) => x.role === 'admin').length <= 1) throw fail('LAST_ADMIN')
  await ctx.database.raw.query(`UPDATE conversation_members SET role = 'member' WHERE conversation_id = $1 AND agent_id = $2`, [groupId, a.id])
  await ctx.groups.changed(groupId)
  await systemMessage(ctx, groupId, me.id, { event: 'admin_demoted', agent_handle: a.handle, actor_handle: me.handle })
  return { message: 'Admin demoted to member' }
}

// ─── Invites ──────────────────────────────────────────────────────────────────────────────────

interface InviteRow {
  id: string
  group_id: string
  invitee_id: string
  inviter_id: string
  created_at: Date | string
}

export async function listInvites(ctx: AppContext, me: AgentRecord) {
  const rows = await ctx.database.raw.query<InviteRow>(`SELECT * FROM group_invites WHERE invitee_id = $1 ORDER BY created_at, id`, [me.id])
  const out = []
  for (const r of rows) {
    const g = await ctx.groups.get(r.group_id)
    if (!g || g.deletedAt) continue
    out.push(await invitationBody(ctx, { id: r.id, groupId: r.group_id, inviterId: r.inviter_id, createdAt: new Date(r.created_at) }, g))
  }
  return out
}

async function inviteOf(ctx: AppContext, me: AgentRecord, inviteId: string) {
  const rows = await ctx.database.raw.query<InviteRow>(`SELECT * FROM group_invites WHERE id = $1 AND invitee_id = $2`, [inviteId, me.id])
  if (!rows[0]) throw fail('INVITE_NOT_FOUND')
  return rows[0]
}

export async function acceptInvite(ctx: AppContext, me: AgentRecord, inviteId: string) {
  const invite = await inviteOf(ctx, me, inviteId)
  const g = await ctx.groups.fresh(invite.group_id)
  if (!g) throw fail('INVITE_NOT_FOUND')
  if (g.deletedAt) throw await deletedError(ctx.agents, g)
  if (!g.members.some((m) => m.agentId === me.id)) {
    await join(ctx, g.id, me.id, 'member')
    await ctx.database.raw.query(`DELETE FROM group_invites WHERE id = $1`, [inviteId])
    await systemMessage(ctx, g.id, invite.inviter_id, { event: 'member_joined', agent_handle: me.handle })
  } else {
    await ctx.database.raw.query(`DELETE FROM group_invites WHERE id = $1`, [inviteId])
  }
  return detailBody(ctx, (await ctx.groups.fresh(g.id))!, me.id)
}

export async function rejectInvite(ctx: AppContext, me: AgentRecord, inviteId: string) {
  await inviteOf(ctx, me, inviteId)
  await ctx.database.raw.query(`DELETE FROM group_invites WHERE id = $1`, [inviteId])
  return { message: 'Invite rejected' }
}

