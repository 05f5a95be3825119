import Redis from 'ioredis'
import type { Server } from 'bun'
import { buildApp } from './app.ts'
import type { Bus } from './bus/bus.ts'
import { LocalBus } from './bus/local.ts'
import { RedisBus } from './bus/redis.ts'
import type { Config } from './config.ts'
import type { AppContext } from './context.ts'
import { openDatabase } from './db/client.ts'
import { createHttpHandler } from './http/handler.ts'
import { DbIdempotencyStore, RedisIdempotencyStore } from './http/idempotency-store.ts'
import { createLogger } from './lib/log.ts'
import { MemoryCounters, RedisCounters } from './limits/counters.ts'
import { createMailer } from './mail/mailer.ts'
import { AgentStore } from './modules/agents/store.ts'
import { Enforcement } from './modules/enforcement/service.ts'

export interface RunningServer {
  ctx: AppContext
  server: Server<unknown>
  url: string
  stop(): Promise<void>
}

/** Build every service for one worker: database (migrated), Redis or in-process state, bus, mail. */
export async function createContext(config: Config): Promise<AppContext> {
  const log = createLogger(config.logLevel)
  const database = await openDatabase(config)
  await database.migrate()
  const redis = config.redisUrl ? new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: true }) : undefined
  redis?.on('error', (err) => log.warn({ err: err.message }, 'redis error'))
  const bus: Bus = config.redisUrl ? new RedisBus(config.redisUrl) : new LocalBus()
  const agents = new AgentStore(database.db, bus)
  return {
    config,
    log,
    database,
    db: database.db,
    redis,
    counters: redis ? new RedisCounters(redis) : new MemoryCounters(),
    bus,
    mailer: createMailer(config, log),
    agents,
    enforcement: new Enforcement(database, agents, bus),
    idempotency: redis ? new RedisIdempotencyStore(redis) : new DbIdempotencyStore(database.db),
  }
}

export async function startServer(config: Config): Promise<RunningServer> {
  const ctx = await createContext(config)
  const app = buildApp(ctx)
  const fetch = createHttpHandler(ctx, app)
  const server = Bun.serve({
    port: config.port,
    hostname: config.host,
    fetch,
    websocket: { message() {} },
  })
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${server.port}`
  ctx.log.info({ url, database: ctx.database.kind, redis: Boolean(config.redisUrl) }, 'AgentChat server listening')
  return {
    ctx,
    server,
    url,
    async stop() {
      await server.stop(true)
      await ctx.bus.close()
      await ctx.counters.close()
      ctx.redis?.disconnect()
      await ctx.database.close()
    },
  }
}
