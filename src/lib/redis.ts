import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis'

/**
 * Where shared state lives: one Redis (`REDIS_URL`) or a Redis Cluster (`REDIS_CLUSTER_NODES`,
 * seed nodes; the client learns the rest). Every caller works with either: single-key commands,
 * Lua scripts whose keys share one hash tag (one slot), MULTI only over one key, no `KEYS`, no
 * database numbers, and sharded pub/sub for deliveries.
 */
export type RedisClient = Redis | Cluster

export type RedisTarget = { kind: 'single'; url: string } | { kind: 'cluster'; nodes: { host: string; port: number }[] }

export function parseClusterNodes(raw: string): { host: string; port: number }[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const i = s.lastIndexOf(':')
      return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }
    })
}

export function describeTarget(t: RedisTarget): string {
  return t.kind === 'single' ? 'redis' : `redis cluster (${t.nodes.length} seed nodes)`
}

/**
 * How a connection behaves while (part of) Redis is unreachable:
 * - `queue`: commands wait for the connection (one retry), as presence, idempotency and counters do;
 * - `failFast`: commands fail at once so the limits fall back to per-process counting;
 * - `subscriber`: the bus' subscriber (queues, reconnects forever).
 */
export type RedisMode = 'queue' | 'failFast' | 'subscriber'

export function connectRedis(t: RedisTarget, mode: RedisMode, extra: RedisOptions = {}): RedisClient {
  if (t.kind === 'single') {
    const opts: RedisOptions =
      mode === 'failFast' ? { enableOfflineQueue: false, maxRetriesPerRequest: 0 } : { maxRetriesPerRequest: 1, enableOfflineQueue: true }
    return new Redis(t.url, { ...opts, ...extra })
  }
  const opts: ClusterOptions = {
    // Deliveries ride on sharded pub/sub: one subscriber connection per master, resubscribed on
    // failover by the client (see bus/redis.ts).
    shardedSubscribers: mode === 'subscriber',
    scaleReads: 'master',
    // Learn a promoted replica quickly; a MOVED reply refreshes the map at once anyway.
    slotsRefreshInterval: 2000,
    clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    redisOptions: { maxRetriesPerRequest: mode === 'failFast' ? 0 : 1, ...extra },
    ...(mode === 'failFast'
      ? {
          // A slot whose master is gone answers in well under a second, then the caller falls back.
          enableOfflineQueue: false,
          maxRedirections: 3,
          retryDelayOnFailover: 50,
          retryDelayOnClusterDown: 50,
          retryDelayOnTryAgain: 50,
        }
      : { enableOfflineQueue: true, maxRedirections: 16, retryDelayOnFailover: 100, retryDelayOnClusterDown: 100 }),
  }
  return new Cluster(t.nodes, opts)
}

/** Wait until the client is ready (or `ms` passed: callers cope with a Redis that is down). */
export async function readyOrTimeout(r: RedisClient, ms: number): Promise<void> {
  if (r.status === 'ready') return
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([new Promise((res) => r.once('ready', res)), new Promise((res) => (timer = setTimeout(res, ms)))])
  clearTimeout(timer)
}

/** True for the errors that mean "Redis (or this slot's node) is unreachable", not a bug. */
export function isRedisUnavailable(err: unknown): boolean {
  const name = (err as { name?: string })?.name ?? ''
  const msg = (err as Error)?.message ?? ''
  return (
    name.includes('Redis') ||
    name === 'MaxRetriesPerRequestError' ||
    name === 'ClusterAllFailedError' ||
    /Connection is closed|Stream isn't writeable|ECONNREFUSED|enableOfflineQueue|CLUSTERDOWN|Too many Cluster redirections|Cluster is ended|TRYAGAIN|None of startup nodes|Failed to refresh slots cache|connect ETIMEDOUT|Command timed out/i.test(msg)
  )
}
