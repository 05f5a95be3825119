import { ConfigError, loadConfig, type Config } from './config.ts'
import { startServer } from './boot.ts'
import { createLogger } from './lib/log.ts'
import { runShards } from './shard/supervisor.ts'

let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(2)
  }
  throw err
}

const log = createLogger(config.logLevel)
// Several workers need state every worker shares: Postgres and Redis. The embedded default (PGlite,
// in-process bus) is always one worker.
const canShard = Boolean(config.databaseUrl && config.redis)
if (config.shards > 1 && !canShard) {
  log.info({ shards: config.shards }, 'SHARDS > 1 needs DATABASE_URL and REDIS_URL (or REDIS_CLUSTER_NODES); running one worker')
}

if (config.shards > 1 && canShard) {
  await runShards(config, log)
} else {
  const running = await startServer(config)
  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    running.ctx.log.info({ signal }, 'shutting down')
    await running.stop()
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}
