import type { RedisClient as Redis } from '../lib/redis.ts'
import type { Logger } from '../lib/log.ts'

/*
 * Loop damping (issue 16): two agents set to answer each other automatically will do so until a
 * person notices, or the bill does. Per conversation the server counts *turns* — a message whose
 * sender differs from the previous counted message's sender — between the same two speakers in
 * a sliding window. When a third agent speaks the pair changes and the count starts again (the
 * conversation is no longer the same two agents echoing each other). Consecutive messages from
 * one sender are not turns (that is rate limiting's business), and `metadata.no_reply` messages
 * are not counted at all.
 *
 * The check and the record are one atomic step, before the write: a turn whose send then fails
 * further on (backlog, overload) still counts, which errs on the side of damping. In Redis when
 * there is one (every worker and process agree), else in memory (exact within one process), and
 * in memory during a Redis outage, as the other limits do.
 */

export interface LoopVerdict {
  ok: boolean
  /** Turns counted in the window (this one included when admitted). */
  turns: number
  /** When refused: until the oldest counted turn leaves the window. */
  retryAfterMs: number
  /** When refused: this is the first refusal of the episode (tell the agents once, not per send). */
  firstRefusal: boolean
  /** When refused: the other speaker of the pair (whose message this one would answer). */
  peerId?: string
}

export interface LoopDamper {
  turn(conversationId: string, senderId: string, maxTurns: number, windowMs: number, turnId: string, now?: number): Promise<LoopVerdict>
}

interface LocalState {
  last: string | null
  prev: string | null
  turns: number[]
  noticed: boolean
  touched: number
}

export class MemoryLoopDamper implements LoopDamper {
  private readonly byConv = new Map<string, LocalState>()
  private sweptAt = 0

  async turn(conversationId: string, senderId: string, maxTurns: number, windowMs: number, _turnId: string, now = Date.now()): Promise<LoopVerdict> {
    return this.turnSync(conversationId, senderId, maxTurns, windowMs, now)
  }

  turnSync(conversationId: string, senderId: string, maxTurns: number, windowMs: number, now = Date.now()): LoopVerdict {
    this.sweep(now, windowMs)
    let s = this.byConv.get(conversationId)
    if (!s) this.byConv.set(conversationId, (s = { last: null, prev: null, turns: [], noticed: false, touched: now }))
    s.touched = now
    while (s.turns.length > 0 && s.turns[0]! <= now - windowMs) s.turns.shift()
    if (s.last === senderId) return { ok: true, turns: s.turns.length, retryAfterMs: 0, firstRefusal: false }
    if (s.last !== null && s.prev !== null && senderId !== s.prev) s.turns = []
    if (maxTurns > 0 && s.turns.length >= maxTurns) {
      const first = !s.noticed
      s.noticed = true
      return { ok: false, turns: s.turns.length, retryAfterMs: Math.max(1, s.turns[0]! + windowMs - now), firstRefusal: first, peerId: s.last ?? undefined }
    }
    s.turns.push(now)
    s.prev = s.last
    s.last = senderId
    s.noticed = false
    return { ok: true, turns: s.turns.length, retryAfterMs: 0, firstRefusal: false }
  }

  /** Forget conversations idle for longer than a window, at most once a minute. */
  private sweep(now: number, windowMs: number) {
    if (now - this.sweptAt < 60_000) return
    this.sweptAt = now
    for (const [k, s] of this.byConv) if (now - s.touched > Math.max(windowMs, 600_000) * 2) this.byConv.delete(k)
  }
}

/*
 * KEYS[1] hash {last, prev, noticed}, KEYS[2] sorted set of turn instants; both carry the
 * conversation as hash tag (one slot). ARGV: sender, now, window ms, max turns, turn id.
 * Returns {ok, turns, retry_after_ms, first_refusal, peer when refused}.
 */
const TURN_LUA = `
local sender = ARGV[1]
local now = tonumber(ARGV[2])
local win = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local last = redis.call('HGET', KEYS[1], 'last')
local prev = redis.call('HGET', KEYS[1], 'prev')
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - win)
if last == sender then
  return {1, redis.call('ZCARD', KEYS[2]), 0, 0}
end
if last and prev and prev ~= '' and sender ~= prev then
  redis.call('DEL', KEYS[2])
end
local n = redis.call('ZCARD', KEYS[2])
if max > 0 and n >= max then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local retry = tonumber(oldest[2]) + win - now
  if retry < 1 then retry = 1 end
  local first = redis.call('HSETNX', KEYS[1], 'noticed', '1')
  return {0, n, retry, first, last or ''}
end
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('HSET', KEYS[1], 'prev', last or '', 'last', sender)
redis.call('HDEL', KEYS[1], 'noticed')
redis.call('PEXPIRE', KEYS[1], win)
redis.call('PEXPIRE', KEYS[2], win)
return {1, n + 1, 0, 0}`

export class RedisLoopDamper implements LoopDamper {
  private readonly local = new MemoryLoopDamper()
  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
  ) {}

  async turn(conversationId: string, senderId: string, maxTurns: number, windowMs: number, turnId: string, now = Date.now()): Promise<LoopVerdict> {
    try {
      const r = (await this.redis.eval(TURN_LUA, 2, `lp:{${conversationId}}:s`, `lp:{${conversationId}}:t`, senderId, now, windowMs, maxTurns, turnId)) as [
        number,
        number,
        number,
        number,
        string?,
      ]
      return { ok: r[0] === 1, turns: Number(r[1]), retryAfterMs: Number(r[2]), firstRefusal: r[3] === 1, peerId: r[4] || undefined }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'redis unavailable: loop damping counted per process')
      return this.local.turnSync(conversationId, senderId, maxTurns, windowMs, now)
    }
  }
}
