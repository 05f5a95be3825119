import { Worker } from 'node:worker_threads'
import type { Config } from '../config.ts'
import { openDatabase } from '../db/client.ts'
import type { Logger } from '../lib/log.ts'

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
  let stopping = false
  const serializable = { ...config, trustedProxies: [...config.trustedProxies] }

  const spawn = (index: number) => {
    const w = new Worker(new URL('./worker.ts', import.meta.url), { workerData: { config: serializable, index } })
    workers.set(index, w)
    w.on('message', (m: { type: string; url?: string }) => {
      if (m.type === 'ready') log.info({ worker: index, url: m.url }, 'shard worker ready')
    })
    w.on('error', (err) => log.error({ err, worker: index }, 'shard worker crashed'))
    w.on('exit', (code) => {
      workers.delete(index)
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
            w.on('message', (m: { type: string }) => m.type === 'stopped' && done())
            setTimeout(done, 15_000)
            w.postMessage({ type: 'shutdown' })
          }),
      ),
    )
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}
