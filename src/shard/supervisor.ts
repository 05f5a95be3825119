import { Worker } from 'node:worker_threads'
import type { Config } from '../config.ts'
import { openDatabase } from '../db/client.ts'
import type { Logger } from '../lib/log.ts'
import { ShardMetrics, type WorkerPort } from '../metrics/gather.ts'
import type { MainToWorker, WorkerToMain } from '../metrics/shard-protocol.ts'

const RESTART_DELAY_MS = 500

/**
 * The main thread of a sharded process: applies migrations once, starts `SHARDS` workers on the
 * same port and keeps them running — a worker that dies is replaced. SIGTERM is forwarded as a
 * graceful shutdown to every worker (stop accepting, close sockets 1001, finish writes).
 */
export async function runShards(config: Config, log: Logger): Promise<void> {
  const db = await openDatabase(config)
  await db.migrate()
  await db.close()

  const workers = new Map<number, Worker>()
  const ready = new Map<number, WorkerPort>()
  let stopping = false
  const serializable = { ...config, trustedProxies: [...config.trustedProxies] }
  // A scrape reaches one worker; every worker's numbers are gathered here (src/metrics/gather.ts).
  const shardMetrics = new ShardMetrics(() => ({ total: config.shards, ready }))

  const spawn = (index: number) => {
    const w = new Worker(new URL('./worker.ts', import.meta.url), { workerData: { config: serializable, index } })
    workers.set(index, w)
    const post = (m: MainToWorker) => w.postMessage(m)
    w.on('message', (m: WorkerToMain) => {
      switch (m.type) {
        case 'ready':
          ready.set(index, { postMessage: post })
          log.info({ worker: index, url: m.url }, 'shard worker ready')
          break
        case 'metrics.snapshot':
          shardMetrics.snapshot(index, m.id, m.metrics)
          break
        case 'metrics.scrape':
          shardMetrics.gather().then(
            (e) => post({ type: 'metrics.result', id: m.id, ok: true, ...e }),
            (err) => post({ type: 'metrics.result', id: m.id, ok: false, error: String(err) }),
          )
          break
      }
    })
    w.on('error', (err) => log.error({ err, worker: index }, 'shard worker crashed'))
    w.on('exit', (code) => {
      workers.delete(index)
      ready.delete(index)
      if (stopping) return
      log.error({ worker: index, code }, 'shard worker exited; restarting')
      setTimeout(() => spawn(index), RESTART_DELAY_MS)
    })
  }
  for (let i = 0; i < config.shards; i++) spawn(i)

  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log.info({ signal, workers: workers.size }, 'shutting down shard workers')
    await Promise.all(
      [...workers.values()].map(
        (w) =>
          new Promise<void>((resolve) => {
            const done = () => {
              void w.terminate()
              resolve()
            }
            w.on('message', (m: WorkerToMain) => m.type === 'stopped' && done())
            setTimeout(done, 15_000)
            w.postMessage({ type: 'shutdown' } satisfies MainToWorker)
          }),
      ),
    )
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}
