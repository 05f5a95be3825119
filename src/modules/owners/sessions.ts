import { randomBytes } from 'node:crypto'
import { recordAudit } from '../../audit/events.ts'
import type { AppContext } from '../../context.ts'
import type { RawSql } from '../../db/client.ts'
import { fail } from '../../http/errors.ts'
import { getMeta } from '../../http/request-meta.ts'
import { sha256Hex } from '../../lib/crypto.ts'
import { newId } from '../../lib/ids.ts'
import { COOKIES, readCookies } from './cookies.ts'

/**
 * A refresh token rotated this recently and presented again is most likely a second tab that
 * refreshed at the same moment (both sent the old cookie): answered 503 REFRESH_UNAVAILABLE so it
 * retries with the cookie the winner set, instead of revoking a legitimate family. Older replays
 * are treated as theft.
 */
export const REFRESH_RACE_GRACE_MS = 2_000

export interface OwnerRow {
  id: string
  email: string
  display_name: string | null
  created_at: Date | string
}

export interface OwnerSession {
  owner: OwnerRow
  sessionId: string
  familyId: string
}

export interface IssuedTokens {
  access: string
  refresh: string
}

const token = (kind: 'as' | 'rt') => `${kind}_${randomBytes(32).toString('base64url')}`

export const ownerBody = (o: OwnerRow) => ({ email: o.email, display_name: o.display_name, created_at: new Date(o.created_at).toISOString() })

/** A new access + refresh pair in `familyId` (a new family at sign-in, the same one on refresh). */
export async function issueSession(q: RawSql, ownerId: string, familyId: string, req: Request): Promise<IssuedTokens> {
  const access = token('as')
  const refresh = token('rt')
  await q.query(
    `INSERT INTO owner_sessions (id, owner_id, family_id, access_hash, refresh_hash, access_expires_at, refresh_expires_at, ip, user_agent)
     VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), now() + make_interval(secs => $7), $8, $9)`,
    [
      newId('ses'),
      ownerId,
      familyId,
      sha256Hex(access),
      sha256Hex(refresh),
      COOKIES.access.maxAgeS,
      COOKIES.refresh.maxAgeS,
      getMeta(req).ip,
      (req.headers.get('user-agent') ?? '').slice(0, 300),
    ],
  )
  return { access, refresh }
}

/** The signed-in owner of a request (access cookie), or 401 UNAUTHORIZED / OWNER_NOT_FOUND. */
export async function authenticateOwner(ctx: AppContext, req: Request): Promise<OwnerSession> {
  const access = readCookies(req.headers.get('cookie')).get(COOKIES.access.name)
  if (!access) throw fail('UNAUTHORIZED', 'Sign in to the dashboard')
  const rows = await ctx.database.raw.query<{ session_id: string; family_id: string; owner_id: string; id: string | null; email: string; display_name: string | null; created_at: Date | string }>(
    `SELECT s.id AS session_id, s.family_id, s.owner_id, o.id, o.email, o.display_name, o.created_at
     FROM owner_sessions s LEFT JOIN owners o ON o.id = s.owner_id
     WHERE s.access_hash = $1 AND s.revoked_at IS NULL AND s.access_expires_at > now()`,
    [sha256Hex(access)],
  )
  const r = rows[0]
  if (!r) throw fail('UNAUTHORIZED', 'Session expired or invalid')
  if (!r.id) throw fail('OWNER_NOT_FOUND')
  return { owner: { id: r.id, email: r.email, display_name: r.display_name, created_at: r.created_at }, sessionId: r.session_id, familyId: r.family_id }
}

/**
 * Refresh rotation with reuse detection. The presented refresh token's row is marked rotated and
 * a new pair is issued in the same family, in one transaction under the row's lock, so two
 * concurrent refreshes of one token cannot both succeed. A token that was already rotated is a
 * replay: the whole family is revoked (after the short race grace above).
 */
export async function refreshSession(ctx: AppContext, req: Request): Promise<{ owner: OwnerRow; tokens: IssuedTokens }> {
  const presented = readCookies(req.headers.get('cookie')).get(COOKIES.refresh.name)
  if (!presented) throw fail('UNAUTHORIZED', 'Sign in to the dashboard')
  const hash = sha256Hex(presented)
  type Outcome = { kind: 'ok'; owner: OwnerRow; tokens: IssuedTokens } | { kind: 'invalid' } | { kind: 'race' } | { kind: 'replay' } | { kind: 'no_owner' }
  const out = await ctx.database.transaction(async (q): Promise<Outcome> => {
    // lock_timeout: a refresh stuck behind another one answers 503 rather than hang.
    await q.query(`SET LOCAL lock_timeout = '3s'`)
    const rows = await q.query<{ id: string; owner_id: string; family_id: string; rotated_ms: string | number | null; revoked: boolean; expired: boolean }>(
      `SELECT id, owner_id, family_id, (extract(epoch FROM now() - rotated_at) * 1000)::bigint AS rotated_ms,
              revoked_at IS NOT NULL AS revoked, refresh_expires_at <= now() AS expired
       FROM owner_sessions WHERE refresh_hash = $1 FOR UPDATE`,
      [hash],
    )
    const s = rows[0]
    if (!s || s.revoked || s.expired) return { kind: 'invalid' }
    if (s.rotated_ms !== null) {
      if (Number(s.rotated_ms) < REFRESH_RACE_GRACE_MS) return { kind: 'race' }
      await q.query(`UPDATE owner_sessions SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`, [s.family_id])
      return { kind: 'replay' }
    }
    const [owner] = await q.query<OwnerRow>(`SELECT id, email, display_name, created_at FROM owners WHERE id = $1`, [s.owner_id])
    if (!owner) return { kind: 'no_owner' }
    await q.query(`UPDATE owner_sessions SET rotated_at = now() WHERE id = $1`, [s.id])
    return { kind: 'ok', owner, tokens: await issueSession(q, s.owner_id, s.family_id, req) }
  }).catch((err: { code?: string }) => {
    if (err?.code === '55P03') throw fail('REFRESH_UNAVAILABLE')
    throw err
  })
  switch (out.kind) {
    case 'ok':
      return out
    case 'race':
      throw fail('REFRESH_UNAVAILABLE', 'This session was refreshed a moment ago; retry', undefined, { 'Retry-After': '1' })
    case 'replay':
      ctx.log.warn({ ip: getMeta(req).ip }, 'replayed dashboard refresh token: session family revoked')
      throw fail('UNAUTHORIZED', 'Session revoked: this refresh token was already used')
    case 'no_owner':
      throw fail('OWNER_NOT_FOUND')
    default:
      throw fail('UNAUTHORIZED', 'Session expired or invalid')
  }
}

/** The session family of the request's refresh cookie, if it names a live one. */
export async function familyOfRefresh(ctx: AppContext, req: Request): Promise<string | null> {
  const presented = readCookies(req.headers.get('cookie')).get(COOKIES.refresh.name)
  if (!presented) return null
  const rows = await ctx.database.raw.query<{ family_id: string }>(
    `SELECT family_id FROM owner_sessions WHERE refresh_hash = $1 AND revoked_at IS NULL`,
    [sha256Hex(presented)],
  )
  return rows[0]?.family_id ?? null
}

/** Sign out this browser: the current session's family is revoked. */
export async function revokeFamily(ctx: AppContext, familyId: string): Promise<void> {
  await ctx.database.raw.query(`UPDATE owner_sessions SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`, [familyId])
}

/** Sign out everywhere: every session of the owner, audited, and their dashboard sockets closed. */
export async function revokeAll(ctx: AppContext, ownerId: string): Promise<number> {
  const n = await ctx.database.transaction(async (q) => {
    const rows = await q.query<{ family_id: string }>(
      `UPDATE owner_sessions SET revoked_at = now() WHERE owner_id = $1 AND revoked_at IS NULL RETURNING family_id`,
      [ownerId],
    )
    await recordAudit(q, { ownerId, actorType: 'owner', action: 'owner.signed_out_all', metadata: {} })
    return new Set(rows.map((r) => r.family_id)).size
  })
  await ctx.bus.publish({ type: 'owner.signed_out', ownerId })
  return n
}
