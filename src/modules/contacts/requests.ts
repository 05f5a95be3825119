import type { AppContext } from '../../context.ts'
import type { RawSql } from '../../db/client.ts'
import { uniqueViolation } from '../../db/errors.ts'
import { enqueue } from '../../delivery/webhooks/outbox.ts'
import { ApiError, fail, rateLimited } from '../../http/errors.ts'
import { noteLimit } from '../../limits/rate-window.ts'
import { newId } from '../../lib/ids.ts'
import type { AgentRecord } from '../agents/record.ts'
import { contactRequestBody, type ContactRequestRow } from './request-shape.ts'
import { resolveOther } from './service.ts'

/*
 * Consent contact requests (Thenvoi, seed 004). An agent asks another to become contacts; the
 * other approves (both contact rows appear, in the transaction that marks the request approved),
 * rejects, or lets it expire after 30 days; the sender may cancel. A request reaches an agent
 * whose inbox is `contacts_only` — that is the point: after approval, its messages do too.
 */

export const CONTACT_REQUESTS = { ttlDays: 30, maxMessage: 1000, perDay: 50 } as const

const SELECT = `SELECT r.id, r.from_id, r.to_id, fa.handle AS from_handle, ta.handle AS to_handle, r.message, r.status,
  r.created_at, r.expires_at, r.resolved_at
  FROM contact_requests r JOIN agents fa ON fa.id = r.from_id JOIN agents ta ON ta.id = r.to_id`

/** Both parties still visible (not suspended or deleted): otherwise a request is not listed. */
const VISIBLE = `fa.status IN ('active', 'restricted') AND ta.status IN ('active', 'restricted')`

async function byId(q: RawSql, id: string, lock = false) {
  const rows = await q.query<ContactRequestRow>(`${SELECT} WHERE r.id = $1${lock ? ' FOR UPDATE OF r' : ''}`, [id])
  return rows[0] ?? null
}

/** Push a frame to the agent's sockets unless it is fully paused (its webhooks follow the same rule in `enqueue`). */
async function notify(ctx: AppContext, agentId: string, type: string, payload: unknown) {
  const a = await ctx.agents.get(agentId)
  if (!a || a.pausedByOwner === 'full') return
  ctx.push.toAgents([agentId], JSON.stringify({ type, payload }))
}

/** POST /v1/contacts/requests */
export async function createRequest(ctx: AppContext, me: AgentRecord, handle: string, message: string | undefined) {
  const other = await resolveOther(ctx, me, handle, 'You cannot send a contact request to yourself')
  // A request is outreach: the rules that hold back an agent's messages hold back its requests.
  if (me.pausedByOwner !== 'none') throw fail('AGENT_PAUSED_BY_OWNER')
  if (me.status === 'restricted') throw fail('RESTRICTED', 'Account restricted: you cannot ask new agents to connect')
  if (await ctx.relations.blockedEitherWay(me.id, other.id)) throw fail('BLOCKED')
  if ((await ctx.relations.hasContact(me.id, other.id)) && (await ctx.relations.hasContact(other.id, me.id))) {
    throw fail('ALREADY_CONTACTS', `You and @${other.handle} are already contacts of each other`)
  }
  // 50 a day, like group invites: a request reaches even a contacts-only inbox, so it must not
  // become a way to spam one.
  const cap = await ctx.counters.rolling(`creq:${me.id}`, CONTACT_REQUESTS.perDay, 86_400_000)
  noteLimit(CONTACT_REQUESTS.perDay, cap)
  if (!cap.allowed) throw rateLimited(cap.retryAfterMs, `At most ${CONTACT_REQUESTS.perDay} contact requests per 24 hours`)
  const id = newId('creq')
  let body: ReturnType<typeof contactRequestBody>
  try {
    body = await ctx.database.transaction(async (q) => {
      // A pending request past its expiry gives way to the new one (the unique index counts it until then).
      await q.query(
        `UPDATE contact_requests SET status = 'expired', resolved_at = expires_at
         WHERE from_id = $1 AND to_id = $2 AND status = 'pending' AND expires_at <= now()`,
        [me.id, other.id],
      )
      await q.query(
        `INSERT INTO contact_requests (id, from_id, to_id, message, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(hours => $5::int * 24))`,
        [id, me.id, other.id, message || null, CONTACT_REQUESTS.ttlDays],
      )
      const b = contactRequestBody((await byId(q, id))!)
      await enqueue(q, 'contact.request.received', id, b, { agents: [other.id] })
      return b
    })
  } catch (err) {
    if (uniqueViolation(err) === 'contact_requests_pending_uq') {
      throw fail('CONTACT_REQUEST_EXISTS', `You already have a pending contact request to @${other.handle}`, { handle: other.handle })
    }
    throw err
  }
  await notify(ctx, other.id, 'contact.request.received', body)
  return body
}

/** GET /v1/contacts/requests/received and …/sent: pending, unexpired, newest first. */
export async function listRequests(ctx: AppContext, me: AgentRecord, side: 'received' | 'sent', limit: number, offset: number) {
  const mine = side === 'received' ? 'r.to_id' : 'r.from_id'
  const where = `WHERE ${mine} = $1 AND r.status = 'pending' AND r.expires_at > now() AND ${VISIBLE}`
  const q = ctx.database.raw
  const [rows, total] = await Promise.all([
    q.query<ContactRequestRow>(`${SELECT} ${where} ORDER BY r.created_at DESC, r.id DESC LIMIT $2 OFFSET $3`, [me.id, limit, offset]),
    q.query<{ n: string | number }>(`SELECT count(*) AS n FROM contact_requests r JOIN agents fa ON fa.id = r.from_id JOIN agents ta ON ta.id = r.to_id ${where}`, [me.id]),
  ])
  return { requests: rows.map(contactRequestBody), total: Number(total[0]?.n ?? 0), limit, offset }
}

type Action = 'approve' | 'reject' | 'cancel'
const RESULT: Record<Action, ContactRequestRow['status']> = { approve: 'approved', reject: 'rejected', cancel: 'cancelled' }

/**
 * Approve / reject (the recipient only) or cancel (the sender only). Anyone else — including the
 * other party for the wrong action — gets 404, as for an id that does not exist. An expired
 * request is 410 `CONTACT_REQUEST_EXPIRED`; one already resolved is 409 `CONTACT_REQUEST_RESOLVED`.
 */
export async function resolveRequest(ctx: AppContext, me: AgentRecord, id: string, action: Action) {
  const actorOf = (r: ContactRequestRow) => (action === 'cancel' ? r.from_id : r.to_id)
  const peek = await byId(ctx.database.raw, id)
  if (!peek || actorOf(peek) !== me.id) throw fail('CONTACT_REQUEST_NOT_FOUND')
  const otherId = action === 'cancel' ? peek.to_id : peek.from_id
  if (action === 'approve' && (await ctx.relations.blockedEitherWay(me.id, otherId))) throw fail('BLOCKED')

  type Outcome = { ok: ReturnType<typeof contactRequestBody> } | { error: ApiError }
  const out = await ctx.database.transaction(async (q): Promise<Outcome> => {
    const r = await byId(q, id, true)
    if (!r || actorOf(r) !== me.id) return { error: fail('CONTACT_REQUEST_NOT_FOUND') }
    if (r.status === 'pending' && new Date(r.expires_at).getTime() <= Date.now()) {
      // Committed as expired (not rolled back with the refusal), so it is never offered again.
      await q.query(`UPDATE contact_requests SET status = 'expired', resolved_at = expires_at WHERE id = $1`, [id])
      return { error: expired(r) }
    }
    if (r.status === 'expired') return { error: expired(r) }
    if (r.status !== 'pending') {
      return { error: new ApiError('CONTACT_REQUEST_RESOLVED', `This contact request was already ${r.status}`, { status: r.status }) }
    }
    const [done] = await q.query<{ resolved_at: Date | string }>(
      `UPDATE contact_requests SET status = $2, resolved_at = now() WHERE id = $1 RETURNING resolved_at`,
      [id, RESULT[action]],
    )
    const body = contactRequestBody({ ...r, status: RESULT[action], resolved_at: done!.resolved_at })
    if (action === 'approve') {
      // Both directions, inserted in key order (the lock order every contact-writing statement uses).
      const [x, y] = [r.from_id, r.to_id].sort()
      await q.query(`INSERT INTO contacts (owner_id, contact_id) VALUES ($1, $2), ($2, $1) ON CONFLICT DO NOTHING`, [x, y])
      await enqueue(q, 'contact.request.approved', id, approvedPayload(body, me), { agents: [r.from_id] })
    }
    return { ok: body }
  })
  if ('error' in out) throw out.error
  if (action === 'approve') {
    await ctx.relations.changed(peek.from_id, peek.to_id)
    await notify(ctx, peek.from_id, 'contact.request.approved', approvedPayload(out.ok, me))
  }
  return out.ok
}

const approvedPayload = (b: ReturnType<typeof contactRequestBody>, approver: AgentRecord) => ({
  request_id: b.id,
  by_handle: approver.handle,
  approved_at: b.resolved_at!,
})

const expired = (r: ContactRequestRow) =>
  new ApiError('CONTACT_REQUEST_EXPIRED', 'This contact request has expired', { expired_at: new Date(r.expires_at).toISOString() })
