import Redis from 'ioredis'
import type { Bus, BusEvent, BusHandler } from './bus.ts'

const CHANNEL = 'agentchat:bus'

/**
 * Redis pub/sub bus. Every process (and this one) receives each event once from Redis, so local
 * and remote subscribers see the same stream in the same order.
 */
export class RedisBus implements Bus {
  readonly remote = true
  private readonly pub: Redis
  private readonly sub: Redis
  private readonly handlers: BusHandler[] = []

  constructor(url: string) {
    const opts = { lazyConnect: false, maxRetriesPerRequest: 1, enableOfflineQueue: true }
    this.pub = new Redis(url, opts)
    this.sub = new Redis(url, opts)
    this.pub.on('error', () => {})
    this.sub.on('error', () => {})
    // (Re)subscribe whenever the connection becomes ready, so a Redis that was down at boot or
    // restarted later is picked up again.
    this.sub.on('ready', () => void this.sub.subscribe(CHANNEL).catch(() => {}))
    this.sub.on('message', (_channel: string, message: string) => {
      let event: BusEvent
      try {
        event = JSON.parse(message) as BusEvent
      } catch {
        return
      }
      for (const h of this.handlers) h(event)
    })
  }

  async publish(event: BusEvent): Promise<void> {
    await this.pub.publish(CHANNEL, JSON.stringify(event))
  }

  subscribe(handler: BusHandler): void {
    this.handlers.push(handler)
  }

  async healthy(): Promise<boolean> {
    try {
      return (await this.pub.ping()) === 'PONG'
    } catch {
      return false
    }
  }

  async close(): Promise<void> {
    this.sub.disconnect()
    this.pub.disconnect()
  }
}
