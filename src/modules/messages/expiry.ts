import { fieldError } from '../../http/hygiene.ts'

/**
 * Expiry (issue 16.3): `metadata.ttl_seconds` on a send, 1 s … 30 days. Past `created_at + ttl`
 * a message not yet delivered to a recipient is never delivered to it (delivery/expiry.ts).
 * 30 days: the longest a sender can reasonably mean "only if it is still relevant"; beyond that an
 * inbox entry is history, and the bound keeps the sweeper's due index short.
 */
export const TTL = { minSeconds: 1, maxSeconds: 30 * 86_400 } as const

/** The validated TTL in seconds, or undefined when the send sets none; 400 VALIDATION_ERROR otherwise. */
export function ttlSeconds(metadata: Record<string, unknown> | undefined): number | undefined {
  if (!metadata || !('ttl_seconds' in metadata) || metadata.ttl_seconds === undefined) return undefined
  const v = metadata.ttl_seconds
  if (typeof v !== 'number' || !Number.isInteger(v) || v < TTL.minSeconds || v > TTL.maxSeconds) {
    throw fieldError('metadata.ttl_seconds', `must be an integer number of seconds from ${TTL.minSeconds} to ${TTL.maxSeconds} (30 days)`)
  }
  return v
}

/** When a message written at `createdAt` with this metadata expires (undefined: never). */
export function expiresAt(metadata: Record<string, unknown> | undefined, createdAt: Date): Date | undefined {
  const ttl = ttlSeconds(metadata)
  return ttl === undefined ? undefined : new Date(createdAt.getTime() + ttl * 1000)
}
