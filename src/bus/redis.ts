import type { Cluster } from 'ioredis'
import { connectRedis, type RedisClient, type RedisTarget } from '../lib/redis.ts'
import type { Bus, BusEvent, BusHandler, Delivery } from './bus.ts'

const BROADCAST = 'agentchat:bus'
/**
 * A virtual shard's delivery channel. The braces are a hash tag: on a cluster the channel's slot
 * (and so the node that carries it, with sharded pub/sub) is picked by the vshard number alone.
 */
export const shardChannel = (vshard: number) => `agentchat:d:{${vshard}}`

/**
 * Deliveries travel as `origin \n messageId \n recipient,recipient \n dashboardAgent \n
 * wake,wake \n frame`: the frame is not re-encoded.
 */
export function encode(d: Delivery): string {
  return `${d.origin}\n${d.messageId ?? ''}\n${d.recipients.join(',')}\n${d.dashboardAgent ?? ''}\n${d.wake?.join(',') ?? ''}\n${d.frame}`
}

export function decode(s: string): Delivery | null {
  const a = s.indexOf('\n')
  const b = s.indexOf('\n', a + 1)
  const c = s.indexOf('\n', b + 1)
  const e = s.indexOf('\n', c + 1)
  const f = s.indexOf('\n', e + 1)
  if (a < 0 || b < 0 || c < 0 || e < 0 || f < 0) return null
  const messageId = s.slice(a + 1, b)
  const recipients = s.slice(b + 1, c)
  const dashboardAgent = s.slice(c + 1, e)
  const wake = s.slice(e + 1, f)
  return {
    origin: s.slice(0, a),
    messageId: messageId || undefined,
    recipients: recipients ? recipients.split(',') : [],
    dashboardAgent: dashboardAgent || undefined,
    wake: wake ? wake.split(',') : undefined,
    frame: s.slice(f + 1),
  }
}

/**
 * Redis pub/sub bus, on one Redis or a Redis Cluster, one code path.
 *
 * Broadcast events (invalidations, socket closes) go to one plain pub/sub channel every worker
 * subscribes to (each worker receives its own events back, so every worker sees one stream in one
 * order); on a cluster plain PUBLISH reaches every node, which is fine for this small stream.
 * Deliveries go to the recipient's virtual-shard channel over sharded pub/sub (SPUBLISH /
 * SSUBSCRIBE, Redis 7): on a cluster the channel lives on the master owning its slot, so a
 * delivery touches one node; a single Redis 7 runs the same commands. (A single Redis older than 7
 * is detected at connect and gets plain PUBLISH/SUBSCRIBE for the same channels.) A worker
 * subscribes to a shard while it holds a socket of an agent in it.
 *
 * Losing the transport (Redis restarted, or a cluster master stopped) can drop deliveries: when
 * the subscriptions are back — the connection ready again, or on a cluster the client has
 * re-subscribed on the promoted replica — the reconnect handlers re-drain every socket from
 * Postgres, where every acknowledged message already is.
 */
export class RedisBus implements Bus {
  readonly remote = true
  private readonly pub: RedisClient
  /** Broadcast subscriber (plain SUBSCRIBE). */
  private readonly sub: RedisClient
  /**
   * Shard-channel subscriber (SSUBSCRIBE). On a single Redis its own connection: ioredis leaves
   * subscriber mode when an SUNSUBSCRIBE reply counts 0 shard channels, even while plain channels
   * are still subscribed on that connection, and would then mistake broadcast messages for
   * command replies. On a cluster the same client (its sharded subscribers are separate
   * connections per master already).
   */
  private readonly ssub: RedisClient
  private readonly cluster: boolean
  private readonly handlers: BusHandler[] = []
  private readonly deliveryHandlers: ((d: Delivery) => void)[] = []
  private readonly reconnectHandlers: (() => void)[] = []
  private readonly shards = new Map<number, number>()
  /** Per joined shard: settles when its SSUBSCRIBE was answered (or failed). */
  private readonly subscribed = new Map<number, Promise<void>>()
  private everReady = false
  private lost = false
  /** Sharded pub/sub (Redis >= 7, always on a cluster); plain pub/sub on an older single Redis. */
  private sharded = true
  private readonly shardedKnown: Promise<void>
  private closed = false

  constructor(target: RedisTarget) {
    this.cluster = target.kind === 'cluster'
    this.pub = connectRedis(target, 'failFast')
    this.sub = connectRedis(target, 'subscriber')
    this.ssub = this.cluster ? this.sub : connectRedis(target, 'subscriber')
    this.pub.on('error', () => {})
    this.sub.on('error', () => {})
    if (this.ssub !== this.sub) this.ssub.on('error', () => {})
    this.shardedKnown = this.cluster ? Promise.resolve() : this.detectSharded()
    const onMessage = (channel: string, message: string) => {
      if (channel === BROADCAST) {
        let event: BusEvent
        try {
          event = JSON.parse(message) as BusEvent
        } catch {
          return
        }
        for (const h of this.handlers) h(event)
        return
      }
      const d = decode(message)
      if (d) for (const h of this.deliveryHandlers) h(d)
    }
    this.sub.on('message', onMessage)
    this.sub.on('smessage', onMessage)
    if (this.ssub !== this.sub) {
      this.ssub.on('message', onMessage)
      this.ssub.on('smessage', onMessage)
    }
    if (this.cluster) {
      const c = this.sub as Cluster
      // A node lost (a master stopped, or its sharded subscriber's connection dropped).
      c.on('-node', () => {
        if (this.everReady && !this.closed) this.lost = true
      })
      // The client re-subscribed every channel on the nodes that now own their slots.
      c.on('subscribersReady', () => this.maybeRecovered())
      c.on('ready', () => {
        void c.subscribe(BROADCAST).catch(() => {})
        this.everReady = true
        this.maybeRecovered()
      })
    } else {
      const r = this.sub
      const sr = this.ssub
      const markLost = () => {
        if (this.everReady && !this.closed) this.lost = true
      }
      r.on('close', markLost)
      sr.on('close', markLost)
      const bothReady = () => {
        if (r.status !== 'ready' || sr.status !== 'ready') return
        this.everReady = true
        this.maybeRecovered()
      }
      // (Re)subscribe whenever a connection becomes ready, so a Redis that was down at boot or
      // restarted later is picked up again; after an outage, tell the realtime layer to re-drain.
      r.on('ready', () => {
        void r.subscribe(BROADCAST).catch(() => {})
        bothReady()
      })
      sr.on('ready', () => {
        void this.shardedKnown.then(() => {
          const channels = [...this.shards.keys()].map(shardChannel)
          if (channels.length > 0) void (this.sharded ? sr.ssubscribe(...channels) : sr.subscribe(...channels)).catch(() => {})
          bothReady()
        })
      })
    }
  }

  private async detectSharded(): Promise<void> {
    for (let i = 0; i < 20 && !this.closed; i++) {
      try {
        const info = await this.pub.info('server')
        const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? '7')
        this.sharded = major >= 7
        return
      } catch {
        await Bun.sleep(250)
      }
    }
  }

  private recoverTimer: ReturnType<typeof setTimeout> | undefined
  private maybeRecovered() {
    if (!this.lost || this.closed) return
    this.lost = false
    // Give the re-subscriptions a moment to land before draining (a delivery published after the
    // drain's look at the database then reaches the socket over the bus).
    clearTimeout(this.recoverTimer)
    this.recoverTimer = setTimeout(() => {
      for (const h of this.reconnectHandlers) h()
    }, this.cluster ? 300 : 0)
  }

  /**
   * Best effort: a refused publish is retried in the background for about ten seconds; during a
   * longer outage other workers miss the event and fall back on their caches' TTL (60 s). The
   * request that caused it never fails or waits for the retries.
   */
  async publish(event: BusEvent): Promise<void> {
    const message = JSON.stringify(event)
    if (await this.tryPublish(message)) return
    // The publishing connection fails fast (a cluster node being re-learnt, a reconnect); a lost
    // socket close or invalidation would leave another worker serving a revoked key or a
    // suspended agent until its cache expires.
    void (async () => {
      for (let i = 1; i <= 12 && !this.closed; i++) {
        await Bun.sleep(Math.min(50 * 2 ** i, 1000))
        if (await this.tryPublish(message)) return
      }
    })()
  }

  private tryPublish(message: string): Promise<boolean> {
    return this.pub.publish(BROADCAST, message).then(
      () => true,
      () => false,
    )
  }

  subscribe(handler: BusHandler): void {
    this.handlers.push(handler)
  }

  async deliver(vshard: number, d: Delivery): Promise<void> {
    if (this.sharded) await this.pub.spublish(shardChannel(vshard), encode(d))
    else await this.pub.publish(shardChannel(vshard), encode(d))
  }

  onDelivery(handler: (d: Delivery) => void): void {
    this.deliveryHandlers.push(handler)
  }

  joinShard(vshard: number): Promise<void> {
    const n = this.shards.get(vshard) ?? 0
    this.shards.set(vshard, n + 1)
    let done = this.subscribed.get(vshard)
    if (n === 0 || !done) {
      // Redis answers (S)SUBSCRIBE once the channel is subscribed: anything published after that arrives.
      done = this.shardedKnown
        .then(() => (this.sharded ? this.ssub.ssubscribe(shardChannel(vshard)) : this.ssub.subscribe(shardChannel(vshard))))
        .then(
          () => {},
          () => {},
        )
      this.subscribed.set(vshard, done)
    }
    return done
  }

  leaveShard(vshard: number): void {
    const n = this.shards.get(vshard) ?? 0
    if (n <= 1) {
      this.shards.delete(vshard)
      this.subscribed.delete(vshard)
      void (this.sharded ? this.ssub.sunsubscribe(shardChannel(vshard)) : this.ssub.unsubscribe(shardChannel(vshard))).catch(() => {})
    } else this.shards.set(vshard, n - 1)
  }

  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler)
  }

  async healthy(): Promise<boolean> {
    try {
      if (this.sub.status !== 'ready' || this.ssub.status !== 'ready') return false
      if (!this.cluster) return (await this.pub.ping()) === 'PONG'
      // Every slot served, as some node sees it: no master down awaiting failover (with
      // cluster-require-full-coverage no the state stays "ok" while a slot is unserved, so count).
      const info = (await (this.pub as Cluster).cluster('INFO')) as string
      return info.includes('cluster_state:ok') && /cluster_slots_ok:16384\b/.test(info)
    } catch {
      return false
    }
  }

  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.recoverTimer)
    this.sub.disconnect()
    if (this.ssub !== this.sub) this.ssub.disconnect()
    this.pub.disconnect()
  }
}
