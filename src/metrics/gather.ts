import { AggregatorRegistry, Gauge } from 'prom-client'
import type { Exposition, MetricsJson } from './metrics.ts'
import type { MainToWorker } from './shard-protocol.ts'

/** How long the main thread waits for one worker's snapshot before answering without it. */
export const WORKER_TIMEOUT_MS = 2_000

/** What the main thread needs of a worker: a way to post to it. */
export interface WorkerPort {
  postMessage(m: MainToWorker): void
}

/**
 * One process-wide exposition from the workers' snapshots: prom-client's
 * `AggregatorRegistry.aggregate` combines metrics of the same name by each metric's own
 * `aggregator` (sum by default; `first` for the gauges read from Postgres), plus
 * `agentchat_shard_workers` saying how many workers answered, so a partial scrape is visible.
 */
export async function combine(snapshots: MetricsJson[], missing: number): Promise<Exposition> {
  const registry = AggregatorRegistry.aggregate(snapshots)
  const workers = new Gauge({
    name: 'agentchat_shard_workers',
    help: 'Worker threads of this process whose metrics are in this scrape (answered) or are not (missing: not ready, or no answer within 2 s).',
    labelNames: ['state'],
    registers: [registry],
  })
  workers.set({ state: 'answered' }, snapshots.length)
  workers.set({ state: 'missing' }, missing)
  return { contentType: registry.contentType, body: await registry.metrics() }
}

interface Round {
  expected: number
  snapshots: Map<number, MetricsJson>
  done: () => void
}

/**
 * The main thread's side of a scrape: asks every ready worker for its snapshot, waits at most
 * WORKER_TIMEOUT_MS, and combines what arrived.
 */
export class ShardMetrics {
  private nextId = 1
  private readonly rounds = new Map<number, Round>()

  constructor(
    /** Every worker slot of the process, ready or not (a slot that is not counts as missing). */
    private readonly workers: () => { total: number; ready: Map<number, WorkerPort> },
    private readonly timeoutMs = WORKER_TIMEOUT_MS,
  ) {}

  /** Feed every `metrics.snapshot` a worker posts here. */
  snapshot(worker: number, id: number, metrics: MetricsJson): void {
    const round = this.rounds.get(id)
    if (!round) return // a late answer to a round that already timed out
    round.snapshots.set(worker, metrics)
    if (round.snapshots.size >= round.expected) round.done()
  }

  async gather(): Promise<Exposition> {
    const { total, ready } = this.workers()
    const id = this.nextId++
    let timer: ReturnType<typeof setTimeout> | undefined
    const round: Round = { expected: ready.size, snapshots: new Map(), done: () => {} }
    const finished = new Promise<void>((resolve) => {
      round.done = resolve
      timer = setTimeout(resolve, this.timeoutMs)
    })
    this.rounds.set(id, round)
    try {
      for (const port of ready.values()) port.postMessage({ type: 'metrics.collect', id })
      if (ready.size > 0) await finished
    } finally {
      clearTimeout(timer)
      this.rounds.delete(id)
    }
    // Worker order, so `first` picks the lowest-numbered worker that answered.
    const snapshots = [...round.snapshots.entries()].sort(([a], [b]) => a - b).map(([, m]) => m)
    return combine(snapshots, Math.max(0, total - snapshots.length))
  }
}
