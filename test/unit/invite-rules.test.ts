import { describe, expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { redactPath } from '../../src/http/handler.ts'
import { hashInviteCode, INVITE_CODE_PATTERN, inviteState, isInviteCode, joinUrl, mintInviteCode, STATE_ERRORS } from '../../src/modules/invites/rules.ts'
import { ERRORS } from '../../src/http/errors.ts'

describe('invite rules', () => {
  test('codes: ic_ + 43 base64url characters (256 bits), unique, stored as their SHA-256', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 1000; i++) {
      const { code, hash } = mintInviteCode()
      expect(code).toMatch(INVITE_CODE_PATTERN)
      expect(Buffer.from(code.slice(3), 'base64url').length).toBe(32)
      expect(hash).toBe(createHash('sha256').update(code).digest('hex'))
      expect(hashInviteCode(code)).toBe(hash)
      seen.add(code)
    }
    expect(seen.size).toBe(1000)
    for (const bad of ['', 'ic_', `ic_${'a'.repeat(42)}`, `ic_${'a'.repeat(44)}`, `IC_${'a'.repeat(43)}`, `ic_${'a'.repeat(42)}=`, `inv_${'a'.repeat(16)}`]) expect(isInviteCode(bad)).toBe(false)
    expect(joinUrl('https://chat.example', 'ic_x')).toBe('https://chat.example/setup/ic_x')
  })

  test('states: used and revoked are final, expiry matters only while pending; each maps to its catalogue code', () => {
    const at = new Date()
    expect(inviteState({ acceptedAt: null, revokedAt: null, expired: false })).toBe('pending')
    expect(inviteState({ acceptedAt: null, revokedAt: null, expired: true })).toBe('expired')
    expect(inviteState({ acceptedAt: at, revokedAt: null, expired: true })).toBe('used')
    expect(inviteState({ acceptedAt: null, revokedAt: at, expired: true })).toBe('revoked')
    expect(Object.fromEntries(Object.entries(STATE_ERRORS).map(([k, c]) => [k, [c, ERRORS[c].status]]))).toEqual({
      used: ['INVITE_USED', 409],
      revoked: ['INVITE_REVOKED', 410],
      expired: ['INVITE_EXPIRED', 410],
    })
  })

  test('request logs never keep an invite code', () => {
    const { code } = mintInviteCode()
    expect(redactPath(`/setup/${code}`)).toBe('/setup/ic_…')
    expect(redactPath(`/v1/invites/${code}/accept`)).toBe('/v1/invites/ic_…/accept')
    expect(redactPath('/v1/invites/inv_abcdefghijklmnop')).toBe('/v1/invites/inv_abcdefghijklmnop')
    expect(redactPath('/v1/messages')).toBe('/v1/messages')
  })
})
