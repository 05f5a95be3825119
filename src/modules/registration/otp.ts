import { and, count, desc, eq, gt, sql } from 'drizzle-orm'
import type { AppContext } from '../../context.ts'
import { otpSends, pendingOtps } from '../../db/schema.ts'
import { safeEqualHex, sha256Hex, sixDigitCode } from '../../lib/crypto.ts'
import { newId } from '../../lib/ids.ts'
import { ApiError, fail, rateLimited } from '../../http/errors.ts'

/** OTP rules of contract §2. */
export const OTP = {
  ttlMs: 600_000,
  cooldownMs: 60_000,
  hourlyCap: 20,
  maxAttempts: 5,
} as const

export type OtpPurpose = 'register' | 'recover' | 'rotate' | 'owner'

export type PendingOtp = typeof pendingOtps.$inferSelect

const codeHash = (pendingId: string, code: string) => sha256Hex(`${pendingId}:${code}`)

const SUBJECTS: Record<OtpPurpose, string> = {
  register: 'Your AgentChat verification code',
  recover: 'Your AgentChat account recovery code',
  rotate: 'Your AgentChat API key rotation code',
  owner: 'Your AgentChat dashboard sign-in code',
}

/**
 * Reserve a send slot for this email: 60 s cooldown (OTP_COOLDOWN) and 20 per hour
 * (OTP_HOURLY_CAP), both with Retry-After. Counted in the database so every process agrees.
 */
async function reserveSendSlot(ctx: AppContext, email: string): Promise<void> {
  const now = Date.now()
  const [last] = await ctx.db
    .select({ sentAt: otpSends.sentAt })
    .from(otpSends)
    .where(eq(otpSends.email, email))
    .orderBy(desc(otpSends.sentAt))
    .limit(1)
  if (last && now - last.sentAt.getTime() < OTP.cooldownMs) {
    throw rateLimited(OTP.cooldownMs - (now - last.sentAt.getTime()), 'Please wait before requesting another code', 'OTP_COOLDOWN')
  }
  const hourAgo = new Date(now - 3_600_000)
  const [{ n } = { n: 0 }] = await ctx.db
    .select({ n: count() })
    .from(otpSends)
    .where(and(eq(otpSends.email, email), gt(otpSends.sentAt, hourAgo)))
  if (n >= OTP.hourlyCap) {
    const [oldest] = await ctx.db
      .select({ sentAt: otpSends.sentAt })
      .from(otpSends)
      .where(and(eq(otpSends.email, email), gt(otpSends.sentAt, hourAgo)))
      .orderBy(otpSends.sentAt)
      .limit(1)
    const wait = oldest ? oldest.sentAt.getTime() + 3_600_000 - now : 3_600_000
    throw rateLimited(wait, 'Too many codes requested for this email this hour', 'OTP_HOURLY_CAP')
  }
  await ctx.db.insert(otpSends).values({ email })
}

export interface IssueInput {
  purpose: OtpPurpose
  email: string
  agentId?: string
  handle?: string
  displayName?: string | null
  description?: string | null
}

/** Create a pending flow and email its code. Returns the pending id. */
export async function issueOtp(ctx: AppContext, input: IssueInput): Promise<string> {
  await reserveSendSlot(ctx, input.email)
  // Dashboard sign-ins are `dpnd_` (contract §15); the agent flows `pnd_`.
  const id = newId(input.purpose === 'owner' ? 'dpnd' : 'pnd')
  const code = sixDigitCode()
  await ctx.db.insert(pendingOtps).values({
    id,
    purpose: input.purpose,
    email: input.email,
    agentId: input.agentId ?? null,
    handle: input.handle ?? null,
    displayName: input.displayName ?? null,
    description: input.description ?? null,
    codeHash: codeHash(id, code),
    expiresAt: new Date(Date.now() + OTP.ttlMs),
  })
  try {
    await ctx.mailer.send({
      to: input.email,
      subject: SUBJECTS[input.purpose],
      text: `Your code is ${code}. It expires in 10 minutes. If you did not ask for it, ignore this email.`,
      code,
    })
  } catch (err) {
    ctx.log.error({ err }, 'sending OTP email failed')
    await ctx.db.delete(pendingOtps).where(eq(pendingOtps.id, id))
    throw fail('OTP_FAILED')
  }
  return id
}

/** A live (unexpired, unburned) pending flow of this purpose, without consuming it. */
export async function findPending(ctx: AppContext, id: string, purpose: OtpPurpose): Promise<PendingOtp | null> {
  const [row] = await ctx.db
    .select()
    .from(pendingOtps)
    .where(and(eq(pendingOtps.id, id), eq(pendingOtps.purpose, purpose), eq(pendingOtps.burned, false), gt(pendingOtps.expiresAt, sql`now()`)))
  return row ?? null
}

/**
 * Check a code. Five attempts; the sixth burns the pending id (429 OTP_ATTEMPTS_EXHAUSTED) and
 * later calls see EXPIRED. A correct code consumes the pending id atomically, so it works once.
 */
export async function consumeOtp(
  ctx: AppContext,
  id: string,
  purpose: OtpPurpose,
  code: string,
  expired: ApiError,
): Promise<PendingOtp> {
  const [row] = await ctx.db
    .update(pendingOtps)
    .set({ attempts: sql`${pendingOtps.attempts} + 1` })
    .where(and(eq(pendingOtps.id, id), eq(pendingOtps.purpose, purpose), eq(pendingOtps.burned, false), gt(pendingOtps.expiresAt, sql`now()`)))
    .returning()
  if (!row) throw expired
  if (row.attempts > OTP.maxAttempts) {
    await ctx.db.update(pendingOtps).set({ burned: true }).where(eq(pendingOtps.id, id))
    throw fail('OTP_ATTEMPTS_EXHAUSTED')
  }
  if (!safeEqualHex(row.codeHash, codeHash(id, code))) throw fail('INVALID_CODE')
  const [consumed] = await ctx.db
    .update(pendingOtps)
    .set({ burned: true })
    .where(and(eq(pendingOtps.id, id), eq(pendingOtps.burned, false)))
    .returning({ id: pendingOtps.id })
  if (!consumed) throw expired
  return row
}
