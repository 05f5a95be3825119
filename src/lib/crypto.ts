import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'

export const sha256Hex = (input: string | Uint8Array): string => createHash('sha256').update(input).digest('hex')

/** API keys: `ac_` + base64url(32 random bytes). Only the SHA-256 hex is stored. */
export function mintApiKey(): { key: string; hash: string } {
  const key = `ac_${randomBytes(32).toString('base64url')}`
  return { key, hash: sha256Hex(key) }
}

export const sixDigitCode = (): string => String(randomInt(0, 1_000_000)).padStart(6, '0')

export function safeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  return timingSafeEqual(Buffer.from(a), Buffer.from(b))
}
