import { Histogram, type Registry } from 'prom-client'

const INTERVAL_MS = 200

/**
 * Event-loop lag as a timer's drift: a 200 ms interval that fires late by d seconds observed d.
 *
 * Why not prom-client's `collectDefaultMetrics` or `perf_hooks.monitorEventLoopDelay` (checked
 * under Bun 1.4.5): every `monitorEventLoopDelay` on a thread shares one histogram, so
 * prom-client's `reset()` at each scrape wipes any other user's numbers (and theirs ours);
 * `performance.eventLoopUtilization()` returns zeros; `nodejs_active_handles_total` and most heap
 * space gauges read 0; and the process-wide values (CPU seconds, RSS) would be summed once per
 * worker thread when the workers' registries are aggregated. A drift timer costs five wake-ups
 * a second and measures what a request waiting on this thread's loop would see.
 */
export class EventLoopLag {
  private timer: ReturnType<typeof setInterval> | undefined
  private readonly lag: Histogram

  constructor(registry: Registry, name: string) {
    this.lag = new Histogram({
      name,
      help: `How late a ${INTERVAL_MS} ms timer fired on each worker thread's event loop (sampled every ${INTERVAL_MS} ms), in seconds.`,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    })
  }

  start(): void {
    if (this.timer) return
    let last = performance.now()
    this.timer = setInterval(() => {
      const now = performance.now()
      this.lag.observe(Math.max(0, now - last - INTERVAL_MS) / 1000)
      last = now
    }, INTERVAL_MS)
    this.timer.unref?.()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }
}
