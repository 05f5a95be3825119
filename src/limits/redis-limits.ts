import type { RedisClient as Redis } from '../lib/redis.ts'
import type { RawSql } from '../db/client.ts'
import type { Logger } from '../lib/log.ts'
import { isRedisUnavailable } from '../lib/redis.ts'
import { BACKLOG, BacklogCounter, countStored, type Backlog } from './backlog.ts'
import { SendRateLimiter, type SendRate, type TokenResult } from './send-rate.ts'

/*
 * Per-agent limits that must be exact across workers and processes live in Redis, changed only
 * by atomic Lua scripts (one round trip each). If Redis is unreachable the send path does not
 * stop: each process falls back to its in-memory counters (exact per process) and the Redis
 * counts it may have missed are reloaded from Postgres when Redis returns.
 *
 * Every script touches one key (hash-tagged by agent), so on a Redis Cluster each runs on the
 * node owning that agent's slot; a batch over many agents is many scripts, never one cross-slot
 * pipeline or MULTI. A cluster master stopped mid-traffic makes only its slots' agents fall back.
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
    redis.on('ready', () => this.reloadTouched())
  }

  private reloadTimer: ReturnType<typeof setTimeout> | undefined
  /**
   * Drop the Redis counts of recipients counted locally during an outage (the next reserve reloads
   * them from Postgres). One DEL per key (their slots differ on a cluster); a key whose node is
   * still down stays listed and is retried a second later — on a cluster the client as a whole
   * stays ready while one master fails over, so 'ready' alone would not tell.
   */
  private reloadTouched() {
    if (this.touchedOffline.size === 0 || this.reloadTimer) return
    const ids = [...this.touchedOffline]
    this.touchedOffline.clear()
    void Promise.all(
      ids.map((id) =>
        this.redis.del(this.key(id)).catch(() => {
          this.touchedOffline.add(id)
        }),
      ),
    ).then(() => this.scheduleReload())
  }

  private scheduleReload() {
    if (this.touchedOffline.size === 0 || this.reloadTimer) return
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = undefined
      this.reloadTouched()
    }, 1000)
    this.reloadTimer.unref?.()
  }

  private offline(recipientId: string) {
    this.touchedOffline.add(recipientId)
    this.scheduleReload()
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
      this.offline(recipientId)
      return this.local.reserve(recipientId, cap)
    }
  }

  async reserveMany(recipientIds: string[], cap: number = BACKLOG.capAt): Promise<Map<string, { ok: boolean; before: number }>> {
    const out = new Map<string, { ok: boolean; before: number }>()
    const limit = Number.isFinite(cap) ? cap : Number.MAX_SAFE_INTEGER
    try {
      // One script per recipient, all sent at once (ioredis writes them back to back: one round
      // trip on a single Redis, one per node involved on a cluster).
      const res = await Promise.all(
        recipientIds.map((id) =>
          (this.redis.eval(RESERVE_LUA, 1, this.key(id), limit, BACKLOG_TTL_MS) as Promise<[number, number]>).then(
            (v) => [null, v] as const,
            (e: unknown) => [e, null] as const,
          ),
        ),
      )
      for (let i = 0; i < recipientIds.length; i++) {
        const [err, value] = res[i]!
        if (err) throw err
        const [state, n] = value!
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
    this.redis.eval(RELEASE_LUA, 1, this.key(recipientId), n, BACKLOG_TTL_MS).catch(() => this.offline(recipientId))
  }

  async forget(recipientId: string): Promise<void> {
    await this.local.forget(recipientId)
    await this.redis.del(this.key(recipientId))
  }

  private isRedisError(err: unknown): boolean {
    return isRedisUnavailable(err)
  }
}
