import type { Exposition, MetricsJson } from './metrics.ts'

/**
 * Messages between a sharded process's main thread and its worker threads. Lifecycle:
 * `ready` (worker up), `shutdown` → `stopped`. Metrics: a worker that receives a scrape sends
 * `metrics.scrape`; the main thread sends `metrics.collect` to every ready worker, each answers
 * `metrics.snapshot` with its registry as prom-client JSON, and the main thread answers the
 * scraping worker with `metrics.result` (the aggregated text, or an error).
 */
export type WorkerToMain =
  | { type: 'ready'; url: string }
  | { type: 'stopped' }
  | { type: 'metrics.scrape'; id: number }
  | { type: 'metrics.snapshot'; id: number; metrics: MetricsJson }

export type MainToWorker =
  | { type: 'shutdown' }
  | { type: 'metrics.collect'; id: number }
  | ({ type: 'metrics.result'; id: number } & ({ ok: true } & Exposition | { ok: false; error: string }))
