import type { RawSql } from '../../db/client.ts'
import type { InviteFacts } from './rules.ts'

export interface InviteRow extends InviteFacts {
  id: string
  inviterId: string
  createdAt: Date
  expiresAt: Date
}

interface RawInvite {
  id: string
  inviter_id: string
  created_at: Date | string
  expires_at: Date | string
  accepted_at: Date | string | null
  revoked_at: Date | string | null
  expired: boolean
}

const COLUMNS = `id, inviter_id, created_at, expires_at, accepted_at, revoked_at, (expires_at <= now()) AS expired`

const date = (v: Date | string) => new Date(v)
const toRow = (r: RawInvite): InviteRow => ({
  id: r.id,
  inviterId: r.inviter_id,
  createdAt: date(r.created_at),
  expiresAt: date(r.expires_at),
  acceptedAt: r.accepted_at === null ? null : date(r.accepted_at),
  revokedAt: r.revoked_at === null ? null : date(r.revoked_at),
  expired: r.expired === true || (r.expired as unknown) === 't',
})

export async function insertInvite(q: RawSql, v: { id: string; codeHash: string; inviterId: string; ttlMs: number }): Promise<InviteRow> {
  const rows = await q.query<RawInvite>(
    `INSERT INTO connection_invites (id, code_hash, inviter_id, created_at, expires_at)
     VALUES ($1, $2, $3, date_trunc('milliseconds', now()), date_trunc('milliseconds', now()) + $4 * interval '1 millisecond')
     RETURNING ${COLUMNS}`,
    [v.id, v.codeHash, v.inviterId, v.ttlMs],
  )
  return toRow(rows[0]!)
}

/** By code hash; `lock` takes the row lock that serialises concurrent accepts and revokes. */
export async function inviteByHash(q: RawSql, codeHash: string, lock = false): Promise<InviteRow | null> {
  const rows = await q.query<RawInvite>(`SELECT ${COLUMNS} FROM connection_invites WHERE code_hash = $1${lock ? ' FOR UPDATE' : ''}`, [codeHash])
  return rows[0] ? toRow(rows[0]) : null
}

/** One of the inviter's invites, by id, locked (revocation). */
export async function ownInviteById(q: RawSql, inviterId: string, id: string): Promise<InviteRow | null> {
  const rows = await q.query<RawInvite>(`SELECT ${COLUMNS} FROM connection_invites WHERE id = $1 AND inviter_id = $2 FOR UPDATE`, [id, inviterId])
  return rows[0] ? toRow(rows[0]) : null
}

/** Pending invites of one agent, newest first (at most what 24 hours of the creation limit allow). */
export async function pendingInvites(q: RawSql, inviterId: string, limit: number): Promise<InviteRow[]> {
  const rows = await q.query<RawInvite>(
    `SELECT ${COLUMNS} FROM connection_invites
     WHERE inviter_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
     ORDER BY created_at DESC, id DESC LIMIT $2`,
    [inviterId, limit],
  )
  return rows.map(toRow)
}

export async function markRevoked(q: RawSql, id: string): Promise<void> {
  await q.query(`UPDATE connection_invites SET revoked_at = now() WHERE id = $1`, [id])
}

export async function markAccepted(q: RawSql, id: string, acceptedBy: string, contract: string): Promise<void> {
  await q.query(`UPDATE connection_invites SET accepted_at = now(), accepted_by = $2, contract = $3 WHERE id = $1`, [id, acceptedBy, contract])
}

export async function blockedEitherWay(q: RawSql, a: string, b: string): Promise<boolean> {
  const rows = await q.query(
    `SELECT 1 FROM blocks WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1) LIMIT 1`,
    [a, b],
  )
  return rows.length > 0
}

/**
 * The pair's direct conversation, established: created so when missing (initiated by the inviter,
 * both members joined), flagged when it exists and is still cold. Locks the conversation row —
 * first, before the contact rows, which is the writer's order when a reply establishes a pair, so
 * the two paths never wait on each other in a cycle. A concurrent cold send that is inserting
 * the same pair makes this wait for it, then update its row.
 */
export async function establishDirect(
  q: RawSql,
  v: { newId: string; agentA: string; agentB: string; initiatorId: string },
): Promise<{ id: string; created: boolean }> {
  const rows = await q.query<{ id: string }>(
    `INSERT INTO conversations (id, type, agent_a, agent_b, initiator_id, established, established_at, created_at)
     VALUES ($1, 'direct', $2, $3, $4, true, now(), now())
     ON CONFLICT (agent_a, agent_b) WHERE type = 'direct'
     DO UPDATE SET established = true, established_at = COALESCE(conversations.established_at, now())
     RETURNING id`,
    [v.newId, v.agentA, v.agentB, v.initiatorId],
  )
  const id = rows[0]!.id
  const created = id === v.newId
  if (created) {
    await q.query(`INSERT INTO conversation_members (conversation_id, agent_id, joined_at) VALUES ($1, $2, now()), ($1, $3, now()) ON CONFLICT DO NOTHING`, [
      id,
      v.agentA,
      v.agentB,
    ])
  }
  return { id, created }
}

/** Both directions, in (owner, contact) order like the writer's establishment inserts. */
export async function addMutualContacts(q: RawSql, agentA: string, agentB: string): Promise<void> {
  await q.query(`INSERT INTO contacts (owner_id, contact_id) VALUES ($1, $2), ($2, $1) ON CONFLICT DO NOTHING`, [agentA, agentB])
}
