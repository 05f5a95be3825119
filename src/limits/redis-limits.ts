import type Redis from 'ioredis'
import type { RawSql } from '../db/client.ts'
import type { Logger } from '../lib/log.ts'
import { BACKLOG, BacklogCounter, countStored, type Backlog } from './backlog.ts'
import { SendRateLimiter, type SendRate, type TokenResult } from './send-rate.ts'

/*
 * Per-agent limits that must be exact across workers and processes live in Redis, changed only
 * by atomic Lua scripts (one round trip each). If Redis is unreachable the send path does not
 * stop: each process falls back to its in-memory counters (exact per process) and the Redis
 * counts it may have missed are reloaded from Postgres when Redis returns.
 */

const RATE_LUA = `
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], 2000) end
return c`

/** Redis keys expire after a day idle; a missing backlog key is reloaded from Postgres. */
const BACKLOG_TTL_MS = 86_400_000

const RESERVE_LUA = `
local v = redis.call('GET', KEYS[1])
if not v then return {-1, 0} end
local n = tonumber(v)
if n >= tonumber(ARGV[1]) then return {0, n} end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, n}`

const RELEASE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  local v = redis.call('DECRBY', KEYS[1], ARGV[1])
  if v < 0 then redis.call('SET', KEYS[1], 0, 'PX', ARGV[2]) end
end
return 0`

export class RedisSendRate implements SendRate {
  private readonly local = new SendRateLimiter()
  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
  ) {}

  async take(key: string, limit: number, now = Date.now()): Promise<TokenResult> {
    const second = Math.floor(now / 1000)
    try {
      const n = (await this.redis.eval(RATE_LUA, 1, `sr:{${key}}:${second}`)) as number
      return n <= limit ? { ok: true, retryAfterMs: 0, at: now, count: n } : { ok: false, retryAfterMs: (second + 1) * 1000 - now, at: now, count: n }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'redis unavailable: send rate counted per process')
      return this.local.takeSync(key, limit, now)
    }
  }
}

export class RedisBacklog implements Backlog {
  private readonly local: BacklogCounter
  /** Recipients counted locally during an outage: their Redis counts are reloaded afterwards. */
  private readonly touchedOffline = new Set<string>()

  constructor(
    private readonly redis: Redis,
    private readonly sql: RawSql,
    private readonly log: Logger,
  ) {
    this.local = new BacklogCounter(sql)
    redis.on('ready', () => {
      if (this.touchedOffline.size === 0) return
      const keys = [...this.touchedOffline].map((id) => this.key(id))
      this.touchedOffline.clear()
      void this.redis.del(...keys).catch(() => {})
    })
  }

  private key(id: string) {
    return `bl:{${id}}`
  }

  async reserve(recipientId: string, cap: number = BACKLOG.capAt): Promise<{ ok: boolean; before: number }> {
    // Lua numbers: an infinite cap travels as a very large one.
    const limit = Number.isFinite(cap) ? cap : Number.MAX_SAFE_INTEGER
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const [state, n] = (await this.redis.eval(RESERVE_LUA, 1, this.key(recipientId), limit, BACKLOG_TTL_MS)) as [number, number]
        if (state === 1) return { ok: true, before: n }
        if (state === 0) return { ok: false, before: n }
        // Not loaded: count in Postgres; the first process to set it wins.
        const count = await countStored(this.sql, recipientId)
        await this.redis.set(this.key(recipientId), count, 'PX', BACKLOG_TTL_MS, 'NX')
      }
      throw new Error('backlog key kept vanishing')
    } catch (err) {
      if (!this.isRedisError(err)) throw err
      this.log.warn({ err: (err as Error).message }, 'redis unavailable: backlog counted per process')
      this.touchedOffline.add(recipientId)
      return this.local.reserve(recipientId, cap)
    }
  }

  async reserveMany(recipientIds: string[], cap: number = BACKLOG.capAt): Promise<Map<string, { ok: boolean; before: number }>> {
    const out = new Map<string, { ok: boolean; before: number }>()
    const limit = Number.isFinite(cap) ? cap : Number.MAX_SAFE_INTEGER
    try {
      const p = this.redis.pipeline()
      for (const id of recipientIds) p.eval(RESERVE_LUA, 1, this.key(id), limit, BACKLOG_TTL_MS)
      const res = (await p.exec()) ?? []
      for (let i = 0; i < recipientIds.length; i++) {
        const [err, value] = res[i] ?? [new Error('missing reply'), null]
        if (err) throw err
        const [state, n] = value as [number, number]
        if (state === -1) out.set(recipientIds[i]!, await this.reserve(recipientIds[i]!, cap))
        else out.set(recipientIds[i]!, { ok: state === 1, before: n })
      }
      return out
    } catch (err) {
      if (!this.isRedisError(err)) throw err
      for (const id of recipientIds) if (!out.has(id)) out.set(id, await this.reserve(id, cap))
      return out
    }
  }

  release(recipientId: string, n = 1): void {
    this.local.release(recipientId, n)
    this.redis.eval(RELEASE_LUA, 1, this.key(recipientId), n, BACKLOG_TTL_MS).catch(() => {
      this.touchedOffline.add(recipientId)
    })
  }

  async forget(recipientId: string): Promise<void> {
    await this.local.forget(recipientId)
    await this.redis.del(this.key(recipientId))
  }

  private isRedisError(err: unknown): boolean {
    const name = (err as { name?: string })?.name ?? ''
    const msg = (err as Error)?.message ?? ''
    return name.includes('Redis') || name === 'MaxRetriesPerRequestError' || /Connection is closed|Stream isn't writeable|ECONNREFUSED|enableOfflineQueue/i.test(msg)
  }
}
