import { randomBytes } from 'node:crypto'
import { recordAudit } from '../../audit/events.ts'
import type { AppContext } from '../../context.ts'
import { uniqueViolation } from '../../db/errors.ts'
import { fail } from '../../http/errors.ts'
import { getMeta } from '../../http/request-meta.ts'
import { newId } from '../../lib/ids.ts'
import { consumeOtp, issueOtp } from '../registration/otp.ts'
import { normalizeEmail } from '../registration/service.ts'
import { issueSession, type IssuedTokens, type OwnerRow } from './sessions.ts'

/**
 * POST /dashboard/auth/otp/request: the OTP rules of §2 (cooldown, hourly cap), and the email
 * namespace of the original server: an email an active agent uses cannot also be an owner's.
 */
export async function requestSignIn(ctx: AppContext, rawEmail: string): Promise<string> {
  const email = normalizeEmail(rawEmail)
  const agent = await ctx.database.raw.query(`SELECT 1 FROM agents WHERE email = $1 AND status <> 'deleted' LIMIT 1`, [email])
  if (agent.length > 0) throw fail('EMAIL_IS_AGENT')
  return issueOtp(ctx, { purpose: 'owner', email })
}

/** POST /dashboard/auth/otp/verify: consume the code, create the owner on first sign-in, open a session family. */
export async function verifySignIn(ctx: AppContext, pendingId: string, code: string, req: Request): Promise<{ owner: OwnerRow; tokens: IssuedTokens }> {
  const pending = await consumeOtp(ctx, pendingId, 'owner', code, fail('EXPIRED', 'Sign-in expired or invalid. Please start again.'))
  const email = pending.email
  const ip = getMeta(req).ip
  const run = () =>
    ctx.database.transaction(async (q) => {
      let [owner] = await q.query<OwnerRow>(`SELECT id, email, display_name, created_at FROM owners WHERE email = $1`, [email])
      if (!owner) {
        ;[owner] = await q.query<OwnerRow>(`INSERT INTO owners (id, email) VALUES ($1, $2) RETURNING id, email, display_name, created_at`, [newId('own'), email])
        await recordAudit(q, { ownerId: owner!.id, actorType: 'owner', action: 'owner.created', metadata: {} })
      }
      const tokens = await issueSession(q, owner!.id, randomBytes(12).toString('base64url'), req)
      await recordAudit(q, { ownerId: owner!.id, actorType: 'owner', action: 'owner.signed_in', metadata: { ip, user_agent: req.headers.get('user-agent') ?? null } })
      return { owner: owner!, tokens }
    })
  try {
    return await run()
  } catch (err) {
    // Two first sign-ins of one email at once: the loser finds the winner's row.
    if (uniqueViolation(err) === 'owners_email_uq') return run()
    throw err
  }
}
