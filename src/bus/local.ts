import type { Bus, BusEvent, BusHandler } from './bus.ts'

/** Single-process bus: events go straight to the subscribers. */
export class LocalBus implements Bus {
  readonly remote = false
  private readonly handlers: BusHandler[] = []

  async publish(event: BusEvent): Promise<void> {
    for (const h of this.handlers) h(event)
  }

  subscribe(handler: BusHandler): void {
    this.handlers.push(handler)
  }

  async healthy(): Promise<boolean> {
    return true
  }

  async close(): Promise<void> {}
}
