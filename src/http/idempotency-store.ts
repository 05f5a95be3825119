import type { RedisClient as Redis } from '../lib/redis.ts'
import { and, eq, lt, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { idempotencyKeys } from '../db/schema.ts'

export interface CachedResponse {
  status: number
  headers: Record<string, string>
  body: string
}

export type ClaimResult =
  | { kind: 'claimed' }
  | { kind: 'in_progress' }
  | { kind: 'conflict' }
  | { kind: 'replay'; response: CachedResponse }

export const IN_PROGRESS_TTL_MS = 60_000
export const REPLAY_TTL_MS = 24 * 3_600_000

/** Where Idempotency-Key records live: Redis when configured, otherwise the database. */
export interface IdempotencyStore {
  claim(agentId: string, key: string, fingerprint: string): Promise<ClaimResult>
  complete(agentId: string, key: string, fingerprint: string, response: CachedResponse): Promise<void>
  release(agentId: string, key: string): Promise<void>
}

export class DbIdempotencyStore implements IdempotencyStore {
  constructor(private readonly db: Db) {}

  async claim(agentId: string, key: string, fingerprint: string): Promise<ClaimResult> {
    // An expired record (stale in-progress marker or replay past 24 h) no longer counts.
    await this.db
      .delete(idempotencyKeys)
      .where(and(eq(idempotencyKeys.agentId, agentId), eq(idempotencyKeys.key, key), lt(idempotencyKeys.expiresAt, sql`now()`)))
    const inserted = await this.db
      .insert(idempotencyKeys)
      .values({ agentId, key, fingerprint, state: 'running', expiresAt: new Date(Date.now() + IN_PROGRESS_TTL_MS) })
      .onConflictDoNothing()
      .returning({ key: idempotencyKeys.key })
    if (inserted.length > 0) return { kind: 'claimed' }
    const [row] = await this.db
      .select()
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.agentId, agentId), eq(idempotencyKeys.key, key)))
    if (!row) return this.claim(agentId, key, fingerprint)
    if (row.fingerprint !== fingerprint) return { kind: 'conflict' }
    if (row.state === 'running') return { kind: 'in_progress' }
    return { kind: 'replay', response: { status: row.statusCode!, headers: row.headers ?? {}, body: row.body ?? '' } }
  }

  async complete(agentId: string, key: string, _fingerprint: string, response: CachedResponse): Promise<void> {
    await this.db
      .update(idempotencyKeys)
      .set({
        state: 'done',
        statusCode: response.status,
        headers: response.headers,
        body: response.body,
        expiresAt: new Date(Date.now() + REPLAY_TTL_MS),
      })
      .where(and(eq(idempotencyKeys.agentId, agentId), eq(idempotencyKeys.key, key)))
  }

  async release(agentId: string, key: string): Promise<void> {
    await this.db.delete(idempotencyKeys).where(and(eq(idempotencyKeys.agentId, agentId), eq(idempotencyKeys.key, key)))
  }
}

export class RedisIdempotencyStore implements IdempotencyStore {
  constructor(private readonly redis: Redis) {}

  private k(agentId: string, key: string) {
    return `idem:${agentId}:${key}`
  }

  async claim(agentId: string, key: string, fingerprint: string): Promise<ClaimResult> {
    const marker = JSON.stringify({ state: 'running', fingerprint })
    const ok = await this.redis.set(this.k(agentId, key), marker, 'PX', IN_PROGRESS_TTL_MS, 'NX')
    if (ok === 'OK') return { kind: 'claimed' }
    const raw = await this.redis.get(this.k(agentId, key))
    if (!raw) return this.claim(agentId, key, fingerprint)
    const rec = JSON.parse(raw) as { state: string; fingerprint: string; response?: CachedResponse }
    if (rec.fingerprint !== fingerprint) return { kind: 'conflict' }
    if (rec.state === 'running' || !rec.response) return { kind: 'in_progress' }
    return { kind: 'replay', response: rec.response }
  }

  async complete(agentId: string, key: string, fingerprint: string, response: CachedResponse): Promise<void> {
    await this.redis.set(this.k(agentId, key), JSON.stringify({ state: 'done', fingerprint, response }), 'PX', REPLAY_TTL_MS)
  }

  async release(agentId: string, key: string): Promise<void> {
    await this.redis.del(this.k(agentId, key))
  }
}
