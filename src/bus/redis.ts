import Redis from 'ioredis'
import type { Bus, BusEvent, BusHandler, Delivery } from './bus.ts'

const BROADCAST = 'agentchat:bus'
const shardChannel = (vshard: number) => `agentchat:d:${vshard}`

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
 * Redis pub/sub bus. Broadcast events go to one channel every worker subscribes to (each worker
 * receives its own events back from Redis, so every worker sees one stream in one order).
 * Deliveries go to the recipient's virtual-shard channel; a worker subscribes to a shard while it
 * holds a socket of an agent in it. With Redis Cluster these map onto sharded pub/sub
 * (SPUBLISH/SSUBSCRIBE) unchanged.
 */
export class RedisBus implements Bus {
  readonly remote = true
  private readonly pub: Redis
  private readonly sub: Redis
  private readonly handlers: BusHandler[] = []
  private readonly deliveryHandlers: ((d: Delivery) => void)[] = []
  private readonly reconnectHandlers: (() => void)[] = []
  private readonly shards = new Map<number, number>()
  /** Per joined shard: settles when its SUBSCRIBE was answered (or failed). */
  private readonly subscribed = new Map<number, Promise<void>>()
  private everReady = false
  private lost = false

  constructor(url: string) {
    this.pub = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 })
    this.sub = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true })
    this.pub.on('error', () => {})
    this.sub.on('error', () => {})
    this.sub.on('close', () => {
      if (this.everReady) this.lost = true
    })
    // (Re)subscribe whenever the connection becomes ready, so a Redis that was down at boot or
    // restarted later is picked up again; after an outage, tell the realtime layer to re-drain.
    this.sub.on('ready', () => {
      const channels = [BROADCAST, ...[...this.shards.keys()].map(shardChannel)]
      void this.sub.subscribe(...channels).catch(() => {})
      this.everReady = true
      if (this.lost) {
        this.lost = false
        for (const h of this.reconnectHandlers) h()
      }
    })
    this.sub.on('message', (channel: string, message: string) => {
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
    })
  }

  /**
   * Best effort: while Redis is down other workers miss the event and fall back on their caches'
   * TTL (60 s); the request that caused it does not fail.
   */
  async publish(event: BusEvent): Promise<void> {
    await this.pub.publish(BROADCAST, JSON.stringify(event)).catch(() => {})
  }

  subscribe(handler: BusHandler): void {
    this.handlers.push(handler)
  }

  async deliver(vshard: number, d: Delivery): Promise<void> {
    await this.pub.publish(shardChannel(vshard), encode(d))
  }

  onDelivery(handler: (d: Delivery) => void): void {
    this.deliveryHandlers.push(handler)
  }

  joinShard(vshard: number): Promise<void> {
    const n = this.shards.get(vshard) ?? 0
    this.shards.set(vshard, n + 1)
    let done = this.subscribed.get(vshard)
    if (n === 0 || !done) {
      // Redis answers SUBSCRIBE once the channel is subscribed: anything published after that arrives.
      done = this.sub.subscribe(shardChannel(vshard)).then(
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
      void this.sub.unsubscribe(shardChannel(vshard)).catch(() => {})
    } else this.shards.set(vshard, n - 1)
  }

  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler)
  }

  async healthy(): Promise<boolean> {
    try {
      return (await this.pub.ping()) === 'PONG' && this.sub.status === 'ready'
    } catch {
      return false
    }
  }

  async close(): Promise<void> {
    this.sub.disconnect()
    this.pub.disconnect()
  }
}
