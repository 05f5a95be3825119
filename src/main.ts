import { ConfigError, loadConfig } from './config.ts'
import { startServer } from './boot.ts'

let config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(2)
  }
  throw err
}

const running = await startServer(config)

let stopping = false
async function shutdown(signal: string) {
  if (stopping) return
  stopping = true
  running.ctx.log.info({ signal }, 'shutting down')
  await running.stop()
  process.exit(0)
}
process.on('SIGTERM', () => void shutdown('SIGTERM'))
process.on('SIGINT', () => void shutdown('SIGINT'))

