import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { sql, type SQL } from 'drizzle-orm'
import { AgentChatClient } from 'agentchatme'
import { loadConfig } from '../src/config.ts'
import { startServer, type RunningServer } from '../src/boot.ts'
import { parseClusterNodes } from '../src/lib/redis.ts'

/**
 * Integration-test harness: starts the real server (Bun.serve + Elysia) on a free port against a
 * real backend — the embedded PGlite default, or a fresh Postgres database (plus Redis) — and
 * registers agents through the official SDK, reading OTP codes from MAIL_DIR.
 */
export type Backend = 'embedded' | 'postgres' | 'postgres+redis' | 'sharded' | 'sharded+cluster'

/** Backends served by a spawned `bun src/main.ts` process (no in-process context to reach into). */
export const isSpawned = (b: Backend) => b === 'sharded' || b === 'sharded+cluster'
/** Backends with Redis (single or cluster) behind them. */
export const hasRedisState = (b: Backend) => b === 'postgres+redis' || isSpawned(b)

export const PG_ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15'
/**
 * The Redis Cluster of the `sharded+cluster` backend: seed nodes, `host:port,…` (its masters are
 * flushed with FLUSHALL before each server: a cluster has no database numbers). Default: the
 * throwaway cluster `scripts/redis-cluster.sh start 7100` makes.
 */
export const TEST_REDIS_CLUSTER_NODES = process.env.TEST_REDIS_CLUSTER_NODES ?? '127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102'

let detected: Promise<Backend[]> | undefined

/**
 * Backends to run the suite against. `TEST_BACKENDS=embedded,postgres,postgres+redis,sharded`
 * pins the list (CI does, so a missing service fails loudly); unset, the embedded default always
 * runs and the others join when Postgres / Redis answer on their standard ports. `sharded` is a
 * real `bun src/main.ts` process with SHARDS=2 worker threads on Postgres + Redis;
 * `sharded+cluster` the same process on a Redis Cluster (`TEST_REDIS_CLUSTER_NODES`), joining when
 * that variable is set or the cluster answers.
 */
export function backends(): Promise<Backend[]> {
  const raw = process.env.TEST_BACKENDS
  if (raw) return Promise.resolve(raw.split(',').map((s) => s.trim()).filter(Boolean) as Backend[])
  return (detected ??= detect())
}

async function detect(): Promise<Backend[]> {
  const list: Backend[] = ['embedded']
  try {
    const admin = postgres(PG_ADMIN_URL, { max: 1, connect_timeout: 2, onnotice: () => {} })
    await admin`select 1`
    await admin.end()
    list.push('postgres')
  } catch {
    console.warn(`[tests] Postgres not reachable at ${PG_ADMIN_URL}: running the embedded backend only`)
    return list
  }
  try {
    const { default: Redis } = await import('ioredis')
    const r = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    await r.connect()
    await r.ping()
    r.disconnect()
    list.push('postgres+redis', 'sharded')
  } catch {
    console.warn(`[tests] Redis not reachable at ${TEST_REDIS_URL}: skipping the postgres+redis backend`)
  }
  if (process.env.TEST_REDIS_CLUSTER_NODES || (await clusterAnswers())) list.push('sharded+cluster')
  return list
}

async function clusterAnswers(): Promise<boolean> {
  const { default: Redis } = await import('ioredis')
  const [first] = parseClusterNodes(TEST_REDIS_CLUSTER_NODES)
  if (!first) return false
  const r = new Redis(first.port, first.host, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  r.on('error', () => {})
  try {
    await r.connect()
    return String(await r.cluster('INFO')).includes('cluster_state:ok')
  } catch {
    return false
  } finally {
    r.disconnect()
  }
}

/** A client for the test cluster (ioredis' Cluster, as the server uses). */
export async function testCluster() {
  const { Cluster } = await import('ioredis')
  return new Cluster(parseClusterNodes(TEST_REDIS_CLUSTER_NODES), { redisOptions: { maxRetriesPerRequest: 1 } })
}

/** FLUSHALL on every master of the test cluster (there are no database numbers to pick one). */
export async function flushTestCluster(nodes = TEST_REDIS_CLUSTER_NODES): Promise<void> {
  const { Cluster } = await import('ioredis')
  const c = new Cluster(parseClusterNodes(nodes), { redisOptions: { maxRetriesPerRequest: 1 } })
  try {
    await new Promise<void>((resolve, reject) => {
      c.once('ready', () => resolve())
      c.once('error', reject)
    })
    await Promise.all(c.nodes('master').map((n) => n.flushall()))
  } finally {
    c.disconnect()
  }
}

/**
 * What tests may do behind the API: seed rows and tell the server's caches about it — through the
 * server's own context in-process, or through Postgres and the Redis bus for a separate process.
 */
export interface Admin {
  sql<T = Record<string, unknown>>(query: SQL): Promise<T[]>
  agentId(handle: string): Promise<string>
  agentChanged(handle: string): Promise<void>
  groupChanged(groupId: string): Promise<void>
  forgetBacklog(agentId: string): Promise<void>
}

export interface TestServer {
  url: string
  mailDir: string
  /** In-process servers only (undefined for `sharded` and `sharded+cluster`). */
  running: RunningServer
  backend: Backend
  databaseUrl?: string
  admin: Admin
  stop(): Promise<void>
}

function inProcessAdmin(running: RunningServer): Admin {
  const ctx = running.ctx
  const admin: Admin = {
    sql: (q) => ctx.database.rows(q),
    agentId: async (handle) => (await ctx.agents.getByHandle(handle))!.id,
    agentChanged: async (handle) => ctx.agents.changed(await admin.agentId(handle)),
    groupChanged: (id) => ctx.groups.changed(id),
    forgetBacklog: (id) => ctx.backlog.forget(id),
  }
  return admin
}

async function externalAdmin(databaseUrl: string, redisUrl: string | { cluster: string }) {
  const { drizzle } = await import('drizzle-orm/postgres-js')
  const { default: Redis } = await import('ioredis')
  const client = postgres(databaseUrl, { max: 2, onnotice: () => {} })
  const db = drizzle(client)
  const redis = typeof redisUrl === 'string' ? new Redis(redisUrl) : await testCluster()
  const publish = (event: unknown) => redis.publish('agentchat:bus', JSON.stringify(event)).then(() => Bun.sleep(50))
  const admin: Admin = {
    sql: async <T,>(q: SQL) => (await db.execute(q)) as unknown as T[],
    agentId: async (handle) => (await client`select id from agents where handle = ${handle}`)[0]!.id as string,
    agentChanged: async (handle) => publish({ type: 'agent.invalidate', agentId: await admin.agentId(handle) }),
    groupChanged: (id) => publish({ type: 'conversation.invalidate', conversationId: id, agentIds: [] }),
    forgetBacklog: async (id) => {
      await redis.del(`bl:{${id}}`)
    },
  }
  return { admin, close: async () => {
    redis.disconnect()
    await client.end()
  } }
}

export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `ac_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`)
  return {
    url,
    async drop() {
      const a = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} })
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await a.end()
    },
  }
}

export async function flushTestRedis(): Promise<void> {
  const { default: Redis } = await import('ioredis')
  const r = new Redis(TEST_REDIS_URL)
  await r.flushdb()
  r.disconnect()
}

export async function startTestServer(backend: Backend, env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ac-test-'))
  const mailDir = join(dataDir, 'mail')
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined
  const vars: Record<string, string> = {
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    MAIL_DIR: mailDir,
    IP_RATE_LIMITS: 'off',
    DATABASE_POOL: '5',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    // Lifted for tests (test/preload.ts says why); in-process configs do not read process.env.
    WRITER_MAX_WAIT_MS: process.env.WRITER_MAX_WAIT_MS!,
  }
  if (backend !== 'embedded') {
    db = await createTestDatabase()
    vars.DATABASE_URL = db.url
  }
  if (backend === 'postgres+redis') {
    await flushTestRedis()
    vars.REDIS_URL = TEST_REDIS_URL
  }
  if (isSpawned(backend)) {
    const cluster = backend === 'sharded+cluster'
    const redisUrl = process.env.TEST_REDIS_SHARDED_URL ?? TEST_REDIS_URL.replace(/\/\d+$/, '/9')
    if (cluster) await flushTestCluster()
    else {
      const { default: Redis } = await import('ioredis')
      const r = new Redis(redisUrl)
      await r.flushdb()
      r.disconnect()
    }
    const { spawnServer } = await import('../load/spawn-server.ts')
    const { PORT: _port, ...fixed } = vars // the spawned process gets its own port
    const redisEnv: Record<string, string> = cluster ? { REDIS_CLUSTER_NODES: TEST_REDIS_CLUSTER_NODES } : { REDIS_URL: redisUrl }
    const spawned = await spawnServer({ ...fixed, ...redisEnv, SHARDS: '2', LOG_LEVEL: 'warn', ...env }, { quiet: true })
    const ext = await externalAdmin(db!.url, cluster ? { cluster: TEST_REDIS_CLUSTER_NODES } : redisUrl)
    return {
      url: spawned.url,
      mailDir,
      running: undefined as unknown as RunningServer,
      backend,
      databaseUrl: db!.url,
      admin: ext.admin,
      async stop() {
        spawned.proc.kill('SIGTERM')
        await Promise.race([spawned.proc.exited, Bun.sleep(10_000).then(() => spawned.proc.kill(9))])
        await ext.close()
        await db?.drop()
        rmSync(dataDir, { recursive: true, force: true })
      },
    }
  }
  const running = await startServer(loadConfig({ ...vars, ...env }))
  return {
    url: running.url,
    mailDir,
    running,
    backend,
    databaseUrl: db?.url,
    admin: inProcessAdmin(running),
    async stop() {
      await running.stop()
      await db?.drop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** The newest code mailed to `email` (waits briefly for the file to appear). */
export async function readCode(mailDir: string, email: string, after = 0): Promise<string> {
  for (let i = 0; i < 50; i++) {
    let files: string[] = []
    try {
      files = readdirSync(mailDir).filter((f) => f.endsWith('.json') && !f.startsWith('.'))
    } catch {}
    const mails = files
      .map((f) => JSON.parse(readFileSync(join(mailDir, f), 'utf8')) as { to: string; code: string; sent_at: string })
      .filter((m) => m.to === email.toLowerCase() && Date.parse(m.sent_at) >= after)
      .sort((a, b) => Date.parse(b.sent_at) - Date.parse(a.sent_at))
    if (mails[0]) return mails[0].code
    await Bun.sleep(20)
  }
  throw new Error(`no mail for ${email} in ${mailDir}`)
}

let seq = 0
/** A unique, valid handle for this run. */
export function uniqueHandle(prefix = 'agent'): string {
  seq++
  return `${prefix}-${Date.now().toString(36)}${seq.toString(36)}${Math.random().toString(36).slice(2, 5)}`.slice(0, 30).replace(/-$/, 'x')
}

export interface Registered {
  handle: string
  email: string
  apiKey: string
  client: AgentChatClient
}

/** Register and verify an agent through the SDK, reading the code from MAIL_DIR. */
export async function registerAgent(s: TestServer, handle = uniqueHandle(), extra: { display_name?: string; description?: string } = {}): Promise<Registered> {
  const email = `${handle}@example.test`
  const started = Date.now() - 5
  const { pending_id } = await AgentChatClient.register({ baseUrl: s.url, email, handle, ...extra })
  const code = await readCode(s.mailDir, email, started)
  const { apiKey, client } = await AgentChatClient.verify(pending_id, code, { baseUrl: s.url })
  return { handle, email, apiKey, client }
}

/** Raw fetch against the server, JSON in and out. */
export async function api(
  s: TestServer,
  method: string,
  path: string,
  opts: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) }
  if (opts.key) headers.authorization = `Bearer ${opts.key}`
  let body: string | undefined
  if (opts.raw !== undefined) body = opts.raw
  else if (opts.body !== undefined) body = JSON.stringify(opts.body)
  if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json'
  const res = await fetch(s.url + path, { method, headers, body })
  const text = await res.text()
  let json: any = undefined
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {}
  return { status: res.status, headers: res.headers, json, text }
}

/**
 * The 60 s per-email OTP cooldown applies between any two codes for one address; tests that need
 * a second code right away (recovery, rotation after registration) clear that address's send log.
 */
export async function clearOtpLog(s: TestServer, email: string): Promise<void> {
  await s.admin.sql(sql`delete from otp_sends where email = ${email.toLowerCase()}`)
}

export interface Frame {
  type: string
  payload?: any
  capabilities?: string[]
}

/**
 * A plain WebSocket client for protocol-level tests: records every frame and the close event.
 * (The SDK's RealtimeClient is used where its behaviour is the point.)
 */
export class WsProbe {
  readonly frames: Frame[] = []
  closed: { code: number; reason: string } | null = null
  private readonly ws: WebSocket
  private waiters: (() => void)[] = []
  readonly opened: Promise<void>

  constructor(url: string, opts: { headers?: Record<string, string> } = {}) {
    this.ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/ws', { headers: opts.headers } as any)
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve()
      this.ws.onerror = () => reject(new Error('websocket error'))
    })
    this.ws.onmessage = (e) => {
      this.frames.push(JSON.parse(String(e.data)))
      this.wake()
    }
    this.ws.onclose = (e) => {
      this.closed = { code: e.code, reason: e.reason }
      this.wake()
    }
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w()
  }

  send(frame: unknown) {
    this.ws.send(JSON.stringify(frame))
  }

  async hello(apiKey: string, capabilities: string[] = ['ack']) {
    await this.opened
    this.send({ type: 'hello', api_key: apiKey, capabilities, client: 'test', client_version: '0' })
    await this.until(() => this.frames.some((f) => f.type === 'hello.ok'), 'hello.ok')
    return this
  }

  ofType(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type)
  }

  /** Wait until `pred` holds (re-checked on every frame/close), or fail after `ms`. */
  async until(pred: () => boolean, what: string, ms = 8000): Promise<void> {
    const deadline = Date.now() + ms
    while (!pred()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames.map((f) => f.type))}, closed: ${JSON.stringify(this.closed)}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100))
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  async closedWith(ms = 8000) {
    await this.until(() => this.closed !== null, 'close', ms)
    return this.closed!
  }

  close() {
    this.ws.close()
  }
}

/** Two agents with an established direct conversation (cold message + reply). */
export async function establishedPair(s: TestServer) {
  const a = await registerAgent(s)
  const b = await registerAgent(s)
  const first = await a.client.sendMessage({ to: b.handle, content: { text: 'hi' } })
  await b.client.sendMessage({ to: a.handle, content: { text: 'hello back' } })
  return { a, b, conversationId: first.message.conversation_id }
}

/**
 * A bare-TCP WebSocket client (node:net) for what browsers' WebSocket hides: it never answers
 * pings, and it can stop reading so the server's send buffer fills.
 */
export class RawWs {
  readonly socket: import('node:net').Socket
  private buf = Buffer.alloc(0)
  private upgraded = false
  readonly texts: string[] = []
  pings = 0
  closeCode: number | null = null
  closeReason = ''
  readonly ready: Promise<void>

  constructor(url: string) {
    const { hostname, port } = new URL(url)
    const net = require('node:net') as typeof import('node:net')
    this.socket = net.connect(Number(port), hostname)
    this.ready = new Promise((resolve, reject) => {
      this.socket.on('connect', () => {
        const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64')
        this.socket.write(
          `GET /v1/ws HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        )
      })
      this.socket.on('error', reject)
      this.socket.on('data', (chunk: Buffer) => {
        this.buf = Buffer.concat([this.buf, chunk])
        if (!this.upgraded) {
          const end = this.buf.indexOf('\r\n\r\n')
          if (end < 0) return
          this.upgraded = true
          this.buf = this.buf.subarray(end + 4)
          resolve()
        }
        this.parse()
      })
    })
  }

  private parse() {
    for (;;) {
      if (this.buf.length < 2) return
      const op = this.buf[0]! & 0x0f
      let len = this.buf[1]! & 0x7f
      let off = 2
      if (len === 126) {
        if (this.buf.length < 4) return
        len = this.buf.readUInt16BE(2)
        off = 4
      } else if (len === 127) {
        if (this.buf.length < 10) return
        len = Number(this.buf.readBigUInt64BE(2))
        off = 10
      }
      if (this.buf.length < off + len) return
      const payload = this.buf.subarray(off, off + len)
      this.buf = this.buf.subarray(off + len)
      if (op === 0x1) this.texts.push(payload.toString())
      else if (op === 0x9) this.pings++
      else if (op === 0x8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005
        this.closeReason = payload.subarray(2).toString()
      }
    }
  }

  sendText(text: string) {
    const data = Buffer.from(text)
    const mask = Buffer.from(crypto.getRandomValues(new Uint8Array(4)))
    const header = data.length < 126 ? Buffer.from([0x81, 0x80 | data.length]) : Buffer.from([0x81, 0x80 | 126, data.length >> 8, data.length & 0xff])
    const masked = Buffer.from(data.map((b, i) => b ^ mask[i % 4]!))
    this.socket.write(Buffer.concat([header, mask, masked]))
  }

  async waitFor(pred: () => boolean, what: string, ms = 8000) {
    const deadline = Date.now() + ms
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await Bun.sleep(20)
    }
  }

  destroy() {
    this.socket.destroy()
  }
}

/** Await a call that must fail and return its SDK error for assertions. */
export async function rejection(p: Promise<unknown>): Promise<import('agentchatme').AgentChatError> {
  try {
    await p
  } catch (e) {
    return e as import('agentchatme').AgentChatError
  }
  throw new Error('expected the call to fail')
}
