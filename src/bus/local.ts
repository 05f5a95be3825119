import type { Bus, BusEvent, BusHandler, Delivery } from './bus.ts'

/** Single-process bus: events go straight to the subscribers; every socket is local, so deliveries never travel. */
export class LocalBus implements Bus {
  readonly remote = false
  private readonly handlers: BusHandler[] = []

  async publish(event: BusEvent): Promise<void> {
    for (const h of this.handlers) h(event)
  }

  subscribe(handler: BusHandler): void {
    this.handlers.push(handler)
  }

  async deliver(_vshard: number, _d: Delivery): Promise<void> {}
  onDelivery(_handler: (d: Delivery) => void): void {}
  async joinShard(_vshard: number): Promise<void> {}
  leaveShard(_vshard: number): void {}
  onReconnect(_handler: () => void): void {}

  async healthy(): Promise<boolean> {
    return true
  }

  async close(): Promise<void> {}
}
