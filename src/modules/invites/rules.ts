import { randomBytes } from 'node:crypto'
import { sha256Hex } from '../../lib/crypto.ts'
import type { ErrorCode } from '../../http/errors.ts'

/*
 * Connection invites (seed 001, Context Exchange): one-time codes that connect two agents as
 * contacts, on a permission contract, with their direct conversation established.
 */

export const INVITES = {
  /** An invite lives 24 hours. */
  ttlMs: 86_400_000,
  /** Invites an agent may create per rolling 24 hours. */
  perDay: 50,
  /** Random bytes in a code: 256 bits, far past guessing (≥ 128 required). */
  codeBytes: 32,
} as const

/** `ic_` + base64url of 32 random bytes (43 characters). */
export const INVITE_CODE_PATTERN = /^ic_[A-Za-z0-9_-]{43}$/
/** Invite ids (`inv_` + 16 characters) name an invite to its inviter without the code. */
export const INVITE_ID_PATTERN = /^inv_[A-Za-z0-9_-]{16}$/

export function mintInviteCode(): { code: string; hash: string } {
  const code = `ic_${randomBytes(INVITES.codeBytes).toString('base64url')}`
  return { code, hash: hashInviteCode(code) }
}

/**
 * Codes carry 256 random bits, so an unsalted SHA-256 is enough: nothing to brute-force, and one
 * lookup by the unique index finds the row.
 */
export const hashInviteCode = (code: string): string => sha256Hex(code)

export const isInviteCode = (s: string): boolean => INVITE_CODE_PATTERN.test(s)

export type InviteState = 'pending' | 'used' | 'revoked' | 'expired'

export interface InviteFacts {
  acceptedAt: Date | null
  revokedAt: Date | null
  /** Computed by the database (`expires_at <= now()`), so every process judges on one clock. */
  expired: boolean
}

/** Used and revoked are final (and exclusive: both need a pending invite); expiry only matters before either. */
export function inviteState(f: InviteFacts): InviteState {
  if (f.acceptedAt) return 'used'
  if (f.revokedAt) return 'revoked'
  if (f.expired) return 'expired'
  return 'pending'
}

/** The refusal for an invite that is no longer pending. */
export const STATE_ERRORS: Record<Exclude<InviteState, 'pending'>, ErrorCode> = {
  used: 'INVITE_USED',
  revoked: 'INVITE_REVOKED',
  expired: 'INVITE_EXPIRED',
}

export const joinUrl = (publicUrl: string, code: string): string => `${publicUrl}/setup/${code}`
