import { join } from 'node:path'
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
import { connectRedis, describeTarget, readyOrTimeout } from './lib/redis.ts'
import { MemoryCounters, RedisCounters } from './limits/counters.ts'
import { MemoryLoopDamper, RedisLoopDamper } from './limits/loop-damping.ts'
import { createMailer } from './mail/mailer.ts'
import { AgentStore } from './modules/agents/store.ts'
import { Enforcement } from './modules/enforcement/service.ts'
import { AckWriter } from './delivery/ack-writer.ts'
import { WebhookDispatcher } from './delivery/webhooks/dispatcher.ts'
import { loadSecretBox } from './lib/secret-box.ts'
import { FileStorage } from './storage/file-storage.ts'
import { S3Storage } from './storage/s3-storage.ts'
import { messageById } from './modules/messages/queries.ts'
import { publicMessage } from './modules/messages/shape.ts'
import { BacklogCounter } from './limits/backlog.ts'
import { SendRateLimiter } from './limits/send-rate.ts'
import { RedisBacklog, RedisSendRate } from './limits/redis-limits.ts'
import { Relations } from './modules/contacts/relations.ts'
import { Provenance } from './modules/messages/provenance.ts'
import { WakeDigests } from './modules/messages/wake-digest.ts'
import { DirectConversations } from './modules/conversations/direct-cache.ts'
import { Conversations } from './modules/conversations/service.ts'
import { GroupStore } from './modules/groups/store.ts'
import { MessageWriter } from './modules/messages/writer.ts'
import { MuteCache } from './modules/mutes/cache.ts'
import { Presence } from './modules/presence/service.ts'
import { LocalPresenceStore, RedisPresenceStore } from './modules/presence/store.ts'
import { Realtime } from './realtime/hub.ts'
import { Push } from './realtime/push.ts'
import type { SocketData } from './realtime/registry.ts'
import { upgrade, websocketHandlers } from './realtime/socket.ts'
import { drainBacklog } from './realtime/drain.ts'
import { DashboardHub } from './realtime/dashboard.ts'
import { LongPolls } from './realtime/longpoll.ts'
import { upgradeDashboard } from './realtime/dashboard-socket.ts'
import { AnnouncementFanout } from './modules/admin/fanout.ts'
import { ExpirySweeper } from './delivery/expiry.ts'
import { DbGauges } from './metrics/db-gauges.ts'
import { Metrics } from './metrics/metrics.ts'

export interface RunningServer {
  ctx: AppContext
  server: Server<SocketData>
  url: string
  stop(): Promise<void>
}

/** Build every service for one worker: database (migrated), Redis or in-process state, bus, mail. */
export async function createContext(config: Config, migrate = true): Promise<AppContext> {
  const log = createLogger(config.logLevel)
  const metrics = new Metrics()
  const database = await openDatabase(config)
  if (migrate) await database.migrate()
  // One Redis (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES): the same clients either way.
  const redis = config.redis ? connectRedis(config.redis, 'queue') : undefined
  redis?.on('error', (err: Error) => log.warn({ err: err.message }, 'redis error'))
  const bus: Bus = config.redis ? new RedisBus(config.redis) : new LocalBus()
  const agents = new AgentStore(database.db, bus)
  const origin = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  // Limits that must be exact across workers and processes: Redis scripts on a connection that
  // fails fast when Redis is down (the limiters then fall back to per-process counting).
  const limitsRedis = config.redis ? connectRedis(config.redis, 'failFast') : undefined
  limitsRedis?.on('error', () => {})
  if (limitsRedis) await readyOrTimeout(limitsRedis, 2000)
  const backlog = limitsRedis ? new RedisBacklog(limitsRedis, database.raw, log) : new BacklogCounter(database.raw)
  const acks = new AckWriter(database.fast, backlog, log, config.ackFlushMs)
  const realtime = new Realtime(bus, config.wsHeartbeatMs, config.wsPongTimeoutMs)
  const longPolls = new LongPolls(bus, origin, limitsRedis)
  const push = new Push(realtime.registry, bus, acks, agents, origin, metrics, longPolls)
  const relations = new Relations(database.raw, bus)
  const provenance = new Provenance(database.raw, bus, agents, relations)
  const groups = new GroupStore(database.raw, bus)
  const secrets = loadSecretBox(config.secretsKey, config.dataDir)
  const conversations = new Conversations(database.raw, groups, agents)
  const webhooks = new WebhookDispatcher({
    database,
    log,
    config,
    box: secrets,
    async buildMessage(messageId, agentId) {
      const m = await messageById({ database }, messageId)
      if (!m) return null
      return provenance.deliver(await publicMessage(agents, m, await conversations.facts(m.conversationId)), agentId)
    },
    onMessageDelivered: (agentId, messageId) => {
      metrics.delivered('webhook')
      acks.markDelivered(agentId, messageId)
    },
  })
  metrics.watch({ openSockets: () => realtime.registry.size(), db: new DbGauges(database, webhooks, log) })
  const ctx: AppContext = {
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
    provenance,
    directs: new DirectConversations(database.raw, bus),
    conversations,
    groups,
    mutes: new MuteCache(database.raw, bus),
    sendRate: limitsRedis ? new RedisSendRate(limitsRedis, log) : new SendRateLimiter(),
    loops: limitsRedis ? new RedisLoopDamper(limitsRedis, log) : new MemoryLoopDamper(),
    limitsRedis,
    backlog,
    writer: new MessageWriter(database, log, config.writerConcurrency, config.writerMaxQueue, metrics, config.writerMaxWaitMs),
    acks,
    realtime,
    push,
    longPolls,
    dashboard: new DashboardHub(
      bus,
      origin,
      (ownerId) =>
        database.raw.query<{ id: string; handle: string }>(
          `SELECT a.id, a.handle FROM owner_claims c JOIN agents a ON a.id = c.agent_id WHERE c.owner_id = $1 AND a.status <> 'deleted'`,
          [ownerId],
        ),
      async (agentId) => (await agents.get(agentId))?.handle,
      config.wsHeartbeatMs,
      config.wsPongTimeoutMs,
    ),
    presence: new Presence(realtime.registry, relations, push, redis ? new RedisPresenceStore(redis, origin) : new LocalPresenceStore(), log, database.raw),
    secrets,
    webhooks,
    storage: config.s3 ? new S3Storage(config.s3) : new FileStorage(join(config.dataDir, 'files')),
    announcements: undefined as unknown as AnnouncementFanout,
    wakeDigests: undefined as unknown as WakeDigests,
    expiry: undefined as unknown as ExpirySweeper,
    metrics,
  }
  // The fan-out writes through the context's own writer, backlog and push.
  ctx.announcements = new AnnouncementFanout(ctx, config.announcementBatch)
  ctx.wakeDigests = new WakeDigests(ctx, config.wakeDigestPollMs)
  ctx.expiry = new ExpirySweeper(ctx, config.expirySweepMs)
  return ctx
}

export async function startServer(config: Config, opts: { reusePort?: boolean; migrate?: boolean } = {}): Promise<RunningServer> {
  const ctx = await createContext(config, opts.migrate ?? true)
  const app = buildApp(ctx)
  const fetch = createHttpHandler(ctx, app)
  const server: Server<SocketData> = Bun.serve<SocketData>({
    port: config.port,
    hostname: config.host,
    reusePort: opts.reusePort ?? false,
    fetch: (req, srv) => {
      const path = pathOf(req.url)
      if (path === '/v1/ws') return upgrade(ctx, req, srv) as Promise<Response>
      if (path === '/v1/ws/dashboard') return upgradeDashboard(ctx, req, srv) as Promise<Response>
      return fetch(req, srv)
    },
    websocket: websocketHandlers(ctx),
  })
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${server.port}`
  // Without PUBLIC_URL, links this server hands out (upload, download and avatar URLs) name the
  // address it actually bound — PORT=0 included.
  if (!config.publicUrlExplicit) config.publicUrl = url
  // Presence claims live while this worker's heartbeat refreshes them; after a Redis outage every
  // socket here is drained again, so deliveries published while the bus was down still arrive.
  const presenceTimer = setInterval(() => ctx.presence.refresh(), 30_000)
  presenceTimer.unref?.()
  ctx.bus.onReconnect(() => {
    ctx.log.info('bus reconnected: draining every socket again')
    for (const ws of ctx.realtime.registry.all()) void drainBacklog(ctx, ws).catch(() => {})
  })
  // An agent leaving a full pause gets what was held back, on every socket it has open here.
  ctx.bus.subscribe((e) => {
    if (e.type !== 'agent.redrain') return
    for (const ws of ctx.realtime.registry.socketsOf(e.agentId) ?? []) void drainBacklog(ctx, ws).catch(() => {})
  })
  ctx.webhooks.start()
  ctx.announcements.start()
  ctx.wakeDigests.start()
  ctx.expiry.start()
  ctx.log.info({ url, database: ctx.database.kind, redis: config.redis ? describeTarget(config.redis) : false }, 'AgentChat server listening')
  return {
    ctx,
    server,
    url,
    async stop() {
      // Answer pending long-polls ([]), stop accepting, close sockets 1001, finish in-flight
      // writes, then release resources. (The polls go first: the server's stop waits for
      // in-flight requests, and a poll could otherwise hold it for up to 60 s.)
      clearInterval(presenceTimer)
      await ctx.longPolls.shutdown()
      ctx.realtime.shutdown()
      ctx.dashboard.shutdown()
      await server.stop(false)
      // Socket close handlers mark agents offline (and tell their contacts) before Redis goes.
      await Bun.sleep(20)
      await ctx.presence.settled()
      await ctx.announcements.stop()
      await ctx.wakeDigests.stop()
      await ctx.expiry.stop()
      await ctx.writer.flushed()
      await ctx.webhooks.stop()
      await ctx.acks.drain()
      server.stop(true)
      await ctx.bus.close()
      await ctx.counters.close()
      ctx.redis?.disconnect()
      ctx.limitsRedis?.disconnect()
      await ctx.database.close()
      ctx.metrics.stop()
    },
  }
}
