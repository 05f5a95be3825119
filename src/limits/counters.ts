import type { RedisClient as Redis } from '../lib/redis.ts'

export interface LimitResult {
  allowed: boolean
  /** Hits counted in the window, this one included. */
  count: number
  /** When the caller may try again (0 when allowed). */
  retryAfterMs: number
  /** When the window frees up (epoch ms): the fixed window's end; for a rolling one, when its oldest hit leaves. */
  resetAt: number
}

/**
 * Shared counters for rate limits that are not on the send hot path (per-IP limits, directory
 * search, mutes, invites). In-process without Redis; atomic Lua scripts with Redis so every
 * process sees the same counts.
 */
export interface Counters {
  /** Fixed window aligned to multiples of `windowMs`; rejected hits are not counted. */
  fixed(key: string, limit: number, windowMs: number): Promise<LimitResult>
  /** Rolling window over the last `windowMs`; rejected hits are not counted. */
  rolling(key: string, limit: number, windowMs: number): Promise<LimitResult>
  close(): Promise<void>
}

export class MemoryCounters implements Counters {
  private readonly fixedWindows = new Map<string, { count: number; endsAt: number }>()
  private readonly logs = new Map<string, number[]>()
  private readonly sweeper: ReturnType<typeof setInterval>

  constructor() {
    this.sweeper = setInterval(() => this.sweep(), 60_000)
    this.sweeper.unref?.()
  }

  async fixed(key: string, limit: number, windowMs: number): Promise<LimitResult> {
    const now = Date.now()
    const endsAt = Math.floor(now / windowMs) * windowMs + windowMs
    let w = this.fixedWindows.get(key)
    if (!w || w.endsAt !== endsAt) {
      w = { count: 0, endsAt }
      this.fixedWindows.set(key, w)
    }
    if (w.count >= limit) return { allowed: false, count: w.count, retryAfterMs: endsAt - now, resetAt: endsAt }
    w.count++
    return { allowed: true, count: w.count, retryAfterMs: 0, resetAt: endsAt }
  }

  async rolling(key: string, limit: number, windowMs: number): Promise<LimitResult> {
    const now = Date.now()
    const log = (this.logs.get(key) ?? []).filter((t) => t > now - windowMs)
    this.logs.set(key, log)
    if (log.length >= limit) return { allowed: false, count: log.length, retryAfterMs: log[0]! + windowMs - now, resetAt: log[0]! + windowMs }
    log.push(now)
    return { allowed: true, count: log.length, retryAfterMs: 0, resetAt: (log[0] ?? now) + windowMs }
  }

  private sweep() {
    const now = Date.now()
    for (const [k, w] of this.fixedWindows) if (w.endsAt <= now) this.fixedWindows.delete(k)
    for (const [k, log] of this.logs) if (log.length === 0 || log[log.length - 1]! < now - 86_400_000 * 8) this.logs.delete(k)
  }

  async close() {
    clearInterval(this.sweeper)
  }
}

const FIXED_LUA = `
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c >= tonumber(ARGV[1]) then return {0, c, redis.call('PTTL', KEYS[1])} end
c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, c, 0}`

const ROLLING_LUA = `
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local c = redis.call('ZCARD', KEYS[1])
if c >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, c, tonumber(oldest[2]) + tonumber(ARGV[2]) - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, c + 1, 0}`

export class RedisCounters implements Counters {
  constructor(private readonly redis: Redis) {}

  async fixed(key: string, limit: number, windowMs: number): Promise<LimitResult> {
    const now = Date.now()
    const windowStart = Math.floor(now / windowMs) * windowMs
    const ttl = windowStart + windowMs - now
    const [ok, count, pttl] = (await this.redis.eval(FIXED_LUA, 1, `rl:f:${key}:${windowStart}`, limit, ttl)) as number[]
    return { allowed: ok === 1, count: count!, retryAfterMs: ok === 1 ? 0 : Math.max(1, pttl!), resetAt: windowStart + windowMs }
  }

  async rolling(key: string, limit: number, windowMs: number): Promise<LimitResult> {
    const now = Date.now()
    const member = `${now}:${Math.random().toString(36).slice(2)}`
    const [ok, count, wait] = (await this.redis.eval(ROLLING_LUA, 1, `rl:r:${key}`, limit, windowMs, now, member)) as number[]
    // Allowed: the window frees up no later than one window from now (the script keeps no oldest for us).
    return { allowed: ok === 1, count: count!, retryAfterMs: ok === 1 ? 0 : Math.max(1, wait!), resetAt: now + (ok === 1 ? windowMs : Math.max(1, wait!)) }
  }

  async close() {}
}
