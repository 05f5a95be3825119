import Redis from 'ioredis'
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Server } from 'bun'
import { buildApp } from './app.ts'
import type { Bus } from './bus/bus.ts'
import { LocalBus } from './bus/local.ts'
import { RedisBus } from './bus/redis.ts'
import type { Config } from './config.ts'
import type { AppContext } from './context.ts'
import { openDatabase } from './db/client.ts'
import { createHttpHandler, pathOf } from './http/handler.ts'
import { DbIdempotencyStore, RedisIdempotencyStore } from './http/idempotency-store.ts'
import { createLogger } from './lib/log.ts'
import { MemoryCounters, RedisCounters } from './limits/counters.ts'
import { createMailer } from './mail/mailer.ts'
import { AgentStore } from './modules/agents/store.ts'
import { Enforcement } from './modules/enforcement/service.ts'
import { AckWriter } from './delivery/ack-writer.ts'
import { BacklogCounter } from './limits/backlog.ts'
import { SendRateLimiter } from './limits/send-rate.ts'
import { Relations } from './modules/contacts/relations.ts'
import { DirectConversations } from './modules/conversations/direct-cache.ts'
import { Conversations } from './modules/conversations/service.ts'
import { MessageWriter } from './modules/messages/writer.ts'
import { MuteCache } from './modules/mutes/cache.ts'
import { Presence } from './modules/presence/service.ts'
import { Realtime } from './realtime/hub.ts'
import { Push } from './realtime/push.ts'
import type { SocketData } from './realtime/registry.ts'
import { upgrade, websocketHandlers } from './realtime/socket.ts'

export interface RunningServer {
  ctx: AppContext
  server: Server<SocketData>
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
  const origin = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  const backlog = new BacklogCounter(database.raw)
  const acks = new AckWriter(database.raw, backlog, log)
  const realtime = new Realtime(bus, config.wsHeartbeatMs, config.wsPongTimeoutMs)
  const push = new Push(realtime.registry, bus, acks, origin)
  const relations = new Relations(database.raw, bus)
  return {
    config,
    log,
    origin,
    database,
    db: database.db,
    redis,
    counters: redis ? new RedisCounters(redis) : new MemoryCounters(),
    bus,
    mailer: createMailer(config, log),
    agents,
    enforcement: new Enforcement(database, agents, bus),
    idempotency: redis ? new RedisIdempotencyStore(redis) : new DbIdempotencyStore(database.db),
    relations,
    directs: new DirectConversations(database.raw, bus),
    conversations: new Conversations(database.raw),
    mutes: new MuteCache(database.raw, bus),
    sendRate: new SendRateLimiter(),
    backlog,
    writer: new MessageWriter(database, log, config.writerConcurrency),
    acks,
    realtime,
    push,
    presence: new Presence(realtime.registry, relations, agents, push),
  }
}

export async function startServer(config: Config): Promise<RunningServer> {
  const ctx = await createContext(config)
  const app = buildApp(ctx)
  const fetch = createHttpHandler(ctx, app)
  const server: Server<SocketData> = Bun.serve<SocketData>({
    port: config.port,
    hostname: config.host,
    fetch: (req, srv) => (pathOf(req.url) === '/v1/ws' ? upgrade(ctx, req, srv) : fetch(req, srv)) as Promise<Response>,
    websocket: websocketHandlers(ctx),
  })
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${server.port}`
  ctx.log.info({ url, database: ctx.database.kind, redis: Boolean(config.redisUrl) }, 'AgentChat server listening')
  return {
    ctx,
    server,
    url,
    async stop() {
      // Stop accepting, close sockets 1001, finish in-flight writes, then release resources.
      ctx.realtime.shutdown()
      await server.stop(false)
      await ctx.writer.flushed()
      await ctx.acks.drain()
      server.stop(true)
      await ctx.bus.close()
      await ctx.counters.close()
      ctx.redis?.disconnect()
      await ctx.database.close()
    },
  }
}
