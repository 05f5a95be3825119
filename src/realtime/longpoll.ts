import type { RedisClient as Redis } from '../lib/redis.ts'
import type { Bus, Delivery } from '../bus/bus.ts'
import { vshardOf } from '../shard/vshard.ts'

/** `GET /v1/messages/stream` (seed 001): timeout range, the per-agent cap and the safety re-check. */
export const LONG_POLL = {
  minTimeout: 1,
  maxTimeout: 60,
  defaultTimeout: 30,
  /** Long-polls one agent may hold open at once, across every worker and process. */
  perAgent: 5,
  /** A waiting poll looks again this often even without a wake (a wake lost to a Redis outage). */
  recheckMs: 10_000,
  /** A cap slot outlives its poll by this much at most when a process dies holding it. */
  leaseGraceMs: 15_000,
  /** On shutdown, how long `shutdown()` waits for the woken polls to answer. */
  drainMs: 3_000,
} as const

/** One waiting long-poll. */
export interface Waiter {
  readonly agentId: string
  readonly vshard: number
  /** Something may be deliverable since the last look (set by a wake, cleared before each look). */
  woken: boolean
  /** The poll must answer now: server shutting down or client gone. */
  done: boolean
  resolve?: () => void
}

/** A slot under the per-agent cap; give it back with `release()`. */
export interface Lease {
  readonly agentId: string
  readonly member: string
  /** Where the slot was counted: Redis (every process) or this worker only (no Redis, or Redis down). */
  readonly where: 'redis' | 'local'
}

const ACQUIRE_LUA = `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1`

/**
 * The long-polls held by this worker, and what wakes them.
 *
 * A poll waits on a promise, never on the database: it is woken when a message for its agent is
 * committed anywhere. Locally, the send path's `Push` calls `wake()`. From other workers and
 * processes, the wake rides on the agent's virtual-shard delivery channel, which this worker joins
 * while it holds a poll for an agent of that shard (the subscription is confirmed before the poll's
 * last look at the database, so a message committed after that look is always announced to it): a
 * `message.new` delivery names its recipients, and messages that get no frame (the recipient muted
 * the sender or the conversation, or is fully paused) are announced by a frameless `wake`
 * delivery. Leaving a full pause (`agent.redrain`) and a bus reconnect (deliveries may have been
 * missed) wake the agent's polls too, and every poll re-checks every `recheckMs` regardless.
 */
export class LongPolls {
  private readonly byAgent = new Map<string, Set<Waiter>>()
  private readonly localSlots = new Map<string, number>()
  private stopping = false
  private held = 0
  private idle: (() => void)[] = []

  constructor(
    private readonly bus: Bus,
    private readonly origin: string,
    /** The fail-fast limits connection; the cap falls back to this worker's count without it. */
    private readonly redis: Redis | undefined,
    private readonly perAgent: number = LONG_POLL.perAgent,
  ) {
    bus.onDelivery((d: Delivery) => {
      if (d.origin === this.origin) return // this worker woke its own polls when it pushed
      if (d.messageId) this.wake(d.recipients)
      if (d.wake) this.wake(d.wake)
    })
    bus.subscribe((e) => {
      if (e.type === 'agent.redrain') this.wake([e.agentId])
    })
    bus.onReconnect(() => {
      for (const set of this.byAgent.values()) for (const w of set) this.signal(w)
    })
  }

  get closing(): boolean {
    return this.stopping
  }

  /** Polls in progress here (holding a slot). */
  size(): number {
    return this.held
  }

  /** Take a slot under the per-agent cap; null when the agent already holds `perAgent` polls. */
  async acquire(agentId: string, ttlMs: number): Promise<Lease | null> {
    const member = `${this.origin}:${Math.random().toString(36).slice(2)}`
    if (this.redis) {
      try {
        const ok = (await this.redis.eval(ACQUIRE_LUA, 1, `lp:{${agentId}}`, Date.now(), this.perAgent, ttlMs, member)) as number
        return ok === 1 ? this.took({ agentId, member, where: 'redis' }) : null
      } catch {
        // Redis unreachable: count here, like the other limits do while it is down.
      }
    }
    const n = this.localSlots.get(agentId) ?? 0
    if (n >= this.perAgent) return null
    this.localSlots.set(agentId, n + 1)
    return this.took({ agentId, member, where: 'local' })
  }

  private took(lease: Lease): Lease {
    this.held++
    return lease
  }

  /** Give the slot back (the Redis entry first, so a shutdown waiting on `held` sees it gone). */
  async release(lease: Lease): Promise<void> {
    if (lease.where === 'redis') await this.redis?.zrem(`lp:{${lease.agentId}}`, lease.member).catch(() => {})
    else {
      const n = (this.localSlots.get(lease.agentId) ?? 1) - 1
      if (n <= 0) this.localSlots.delete(lease.agentId)
      else this.localSlots.set(lease.agentId, n)
    }
    this.held--
    if (this.held === 0) for (const r of this.idle.splice(0)) r()
  }

  /**
   * Start listening for the agent's wakes. Resolves once wakes published from now on will reach
   * this worker (or after a second, if the bus is slow to confirm: the re-check covers the rest).
   */
  async watch(agentId: string, handle: string): Promise<Waiter> {
    const w: Waiter = { agentId, vshard: vshardOf(handle), woken: false, done: this.stopping }
    let set = this.byAgent.get(agentId)
    if (!set) this.byAgent.set(agentId, (set = new Set()))
    set.add(w)
    const joined = this.bus.joinShard(w.vshard)
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([joined, new Promise<void>((r) => (timer = setTimeout(r, 1000)))])
    clearTimeout(timer)
    return w
  }

  unwatch(w: Waiter): void {
    const set = this.byAgent.get(w.agentId)
    if (!set?.delete(w)) return
    if (set.size === 0) this.byAgent.delete(w.agentId)
    this.bus.leaveShard(w.vshard)
  }

  /** Wait until woken, finished, or `ms` passed; returns at once when a wake came since the last look. */
  wait(w: Waiter, ms: number): Promise<void> {
    if (w.woken || w.done) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        w.resolve = undefined
        resolve()
      }, ms)
      w.resolve = () => {
        clearTimeout(timer)
        w.resolve = undefined
        resolve()
      }
    })
  }

  /** The poll must answer now (client disconnected). */
  finish(w: Waiter): void {
    w.done = true
    w.resolve?.()
  }

  /** Something was stored for these agents: their polls here look again. */
  wake(agentIds: Iterable<string>): void {
    if (this.byAgent.size === 0) return
    for (const id of agentIds) for (const w of this.byAgent.get(id) ?? []) this.signal(w)
  }

  private signal(w: Waiter): void {
    w.woken = true
    w.resolve?.()
  }

  /**
   * Server stopping: every poll held here answers `[]` now, and new ones answer at once. Resolves
   * when they have all answered (bounded by `drainMs`), so sockets and the database can close.
   */
  async shutdown(): Promise<void> {
    this.stopping = true
    for (const set of this.byAgent.values()) for (const w of set) this.finish(w)
    if (this.held === 0) return
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([new Promise<void>((r) => this.idle.push(r)), new Promise<void>((r) => (timer = setTimeout(r, LONG_POLL.drainMs)))])
    clearTimeout(timer)
  }
}
