import { parentPort, workerData } from 'node:worker_threads'
import { startServer } from '../boot.ts'
import type { Config } from '../config.ts'
import type { MainToWorker, WorkerToMain } from '../metrics/shard-protocol.ts'
import { linkWorkerMetrics } from '../metrics/worker-link.ts'

/**
 * One shard worker: the whole API (HTTP and WebSocket) on the shared port (SO_REUSEPORT lets the
 * kernel spread connections over the workers). Migrations already ran in the main thread.
 */
const { config } = workerData as { config: Config; index: number }
config.trustedProxies = new Set(config.trustedProxies as unknown as string[])
const running = await startServer(config, { reusePort: true, migrate: false })
const post = (m: WorkerToMain) => parentPort?.postMessage(m)
const metrics = linkWorkerMetrics({ postMessage: post }, running.ctx.metrics)
post({ type: 'ready', url: running.url })
parentPort?.on('message', async (m: MainToWorker) => {
  if (m.type !== 'shutdown') return metrics(m)
  await running.stop()
  post({ type: 'stopped' })
})
