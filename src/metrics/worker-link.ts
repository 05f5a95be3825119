import type { Exposition, Metrics } from './metrics.ts'
import type { MainToWorker, WorkerToMain } from './shard-protocol.ts'

/** Longer than the main thread's per-worker wait, so a slow worker costs its numbers, not the scrape. */
const SCRAPE_TIMEOUT_MS = 5_000

/**
 * A sharded worker's side of the metrics protocol: its scrapes go to the main thread, and it
 * answers the main thread's `metrics.collect` with its own snapshot. Returns the handler for
 * the metrics messages the main thread posts.
 */
export function linkWorkerMetrics(port: { postMessage(m: WorkerToMain): void }, metrics: Metrics): (m: MainToWorker) => void {
  let nextId = 1
  const waiting = new Map<number, { resolve: (e: Exposition) => void; reject: (e: Error) => void }>()
  metrics.scrapeVia(
    () =>
      new Promise<Exposition>((resolve, reject) => {
        const id = nextId++
        const timer = setTimeout(() => {
          waiting.delete(id)
          reject(new Error('the main thread did not answer the metrics scrape'))
        }, SCRAPE_TIMEOUT_MS)
        waiting.set(id, {
          resolve: (e) => (clearTimeout(timer), resolve(e)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        })
        port.postMessage({ type: 'metrics.scrape', id })
      }),
  )
  return (m) => {
    if (m.type === 'metrics.collect') {
      // No answer on failure: the main thread counts this worker as missing after its wait.
      metrics
        .snapshot()
        .then((snapshot) => port.postMessage({ type: 'metrics.snapshot', id: m.id, metrics: snapshot }))
        .catch(() => {})
    } else if (m.type === 'metrics.result') {
      const w = waiting.get(m.id)
      if (!w) return
      waiting.delete(m.id)
      if (m.ok) w.resolve({ contentType: m.contentType, body: m.body })
      else w.reject(new Error(m.error))
    }
  }
}
