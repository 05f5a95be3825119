import { setDefaultTimeout, afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import postgres from 'postgres'
import Redis from 'ioredis'
import { AgentChatClient } from 'agentchatme'
import { backends, createTestDatabase, flushTestCluster, readCode, testCluster, TEST_REDIS_CLUSTER_NODES, TEST_REDIS_URL, WsProbe, type TestServer } from './harness.ts'
import { dashboardSocket, OwnerClient } from './owner-client.ts'
import { freePort, spawnServer, type SpawnedServer } from '../load/spawn-server.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(60_000)

/**
 * The network across worker threads and processes: real `bun src/main.ts` processes sharing one
 * Postgres database and one Redis, with SHARDS=2 workers on one port or two processes on two
 * ports. Every check goes through the public API.
 */

type Proc = SpawnedServer
const spawn = (env: Record<string, string>) => spawnServer({ ...env, DATABASE_POOL: '5' }, { quiet: true })

async function stop(p: Proc) {
  p.proc.kill('SIGTERM')
  await Promise.race([p.proc.exited, Bun.sleep(10_000).then(() => p.proc.kill(9))])
}

interface Agent {
  handle: string
  email: string
  apiKey: string
  via: (url: string) => AgentChatClient
}

let n = 0
async function register(url: string, mailDir: string, prefix: string): Promise<Agent> {
  const handle = `${prefix}-${Date.now().toString(36)}${(n++).toString(36)}`
  const email = `${handle}@example.test`
  const started = Date.now() - 5
  const { pending_id } = await AgentChatClient.register({ baseUrl: url, email, handle })
  const code = await readCode(mailDir, email, started)
  const { apiKey } = await AgentChatClient.verify(pending_id, code, { baseUrl: url })
  return { handle, email, apiKey, via: (u) => new AgentChatClient({ apiKey, baseUrl: u, retry: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 } as any }) }
}

async function send(url: string, from: Agent, to: Agent, id: string) {
  const r = await fetch(`${url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${from.apiKey}` },
    body: JSON.stringify({ to: to.handle, client_msg_id: id, content: { text: id } }),
  })
  return { status: r.status, body: (await r.json()) as any }
}

const all = await backends()
const hasRedis = all.includes('postgres+redis')
/** The `sharded+cluster` backend: the same checks on a Redis Cluster (CI's fifth backend). */
const hasCluster = all.includes('sharded+cluster')
type Mode = 'processes' | 'shards' | 'cluster'
const modes: [string, Mode][] = [
  ...(hasRedis
    ? ([
        ['two processes on two ports', 'processes'],
        ['one process with SHARDS=2', 'shards'],
      ] as [string, Mode][])
    : []),
  ...(hasCluster ? ([['two processes (SHARDS=2 and 1) on a Redis Cluster', 'cluster']] as [string, Mode][]) : []),
]

describe.if(modes.length > 0).each(modes.length > 0 ? modes : [['none', 'processes' as Mode]])('cluster: %s', (_name, mode) => {
  let A: Proc
  let B: Proc
  let dataDir: string
  let mailDir: string
  let db: Awaited<ReturnType<typeof createTestDatabase>>
  const redisDb = mode === 'processes' ? 13 : 12
  const redisUrl = TEST_REDIS_URL.replace(/\/\d+$/, `/${redisDb}`)
  const redisEnv: Record<string, string> = mode === 'cluster' ? { REDIS_CLUSTER_NODES: TEST_REDIS_CLUSTER_NODES } : { REDIS_URL: redisUrl }
  const redisClient = () => (mode === 'cluster' ? testCluster() : Promise.resolve(new Redis(redisUrl)))

  beforeAll(async () => {
    db = await createTestDatabase()
    dataDir = mkdtempSync(join(tmpdir(), 'ac-cluster-'))
    mailDir = join(dataDir, 'mail')
    if (mode === 'cluster') await flushTestCluster()
    else {
      const r = new Redis(redisUrl)
      await r.flushdb()
      r.disconnect()
    }
    const env = { DATABASE_URL: db.url, ...redisEnv, DATA_DIR: dataDir, MAIL_DIR: mailDir, SHARDS: mode === 'processes' ? '1' : '2' }
    A = await spawn(env)
    B = mode === 'shards' ? A : await spawn({ ...env, SHARDS: '1' })
  })
  afterAll(async () => {
    await stop(A)
    if (B !== A) await stop(B)
    await db.drop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  async function pair() {
    const a = await register(A.url, mailDir, 'ca')
    const b = await register(B.url, mailDir, 'cb')
    expect((await send(A.url, a, b, 'hello')).status).toBe(201)
    expect((await send(B.url, b, a, 'hello back')).status).toBe(201)
    return { a, b }
  }

  test('a message accepted on one side reaches every socket of the recipient, wherever connected', async () => {
    const { a, b } = await pair()
    // Several sockets: with SHARDS=2 the kernel spreads them over both workers.
    const sockets = await Promise.all([B, B, B, A].map((p) => new WsProbe(p.url).hello(b.apiKey)))
    await Bun.sleep(200)
    const m = await send(A.url, a, b, 'across')
    expect(m.status).toBe(201)
    for (const ws of sockets) {
      await ws.until(() => ws.ofType('message.new').some((f) => f.payload.id === m.body.id), 'the frame on every socket')
      expect(ws.ofType('message.new').filter((f) => f.payload.id === m.body.id).length).toBe(1)
    }
    for (const ws of sockets) ws.close()
  })

  test('one agent\'s sends spread over both sides: at most 60 accepted per second', async () => {
    const { a, b } = await pair()
    await Bun.sleep(1000 - (Date.now() % 1000) + 20)
    const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => send(i % 2 ? A.url : B.url, a, b, `r${i}`)))
    const perSecond = new Map<number, number>()
    for (const r of rs.filter((x) => x.status === 201)) {
      const s = Math.floor(Date.parse(r.body.created_at) / 1000)
      perSecond.set(s, (perSecond.get(s) ?? 0) + 1)
    }
    for (const count of perSecond.values()) expect(count).toBeLessThanOrEqual(60)
    const refused = rs.filter((x) => x.status === 429)
    expect(refused.length).toBeGreaterThanOrEqual(100 - 60 * perSecond.size)
    for (const r of refused) expect(r.body.code).toBe('RATE_LIMITED')
  })

  test('the 10,000 backlog cap holds when both sides fill one inbox concurrently', async () => {
    const { a, b } = await pair()
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    const one = async (q: Promise<postgres.Row[]>) => (await q)[0]!
    const { ida } = await one(sql`select id as ida from agents where handle = ${a.handle}`)
    const { idb } = await one(sql`select id as idb from agents where handle = ${b.handle}`)
    const { conv } = await one(sql`select m.conversation_id as conv from messages m where m.sender_id = ${ida} limit 1`)
    // b has 1 stored envelope (a's first message); add 9,989 more: 9,990 stored.
    await sql`
      with m as (
        insert into messages (id, conversation_id, seq, sender_id, client_msg_id, type, content, metadata)
        select 'msg_cl' || ${mode} || g, ${conv}, 100000 + g, ${ida}, 'cl-' || g, 'text', '{"text":"x"}', '{}'
        from generate_series(1, 9989) g returning id, seq)
      select count(*) from m`
    await sql`update conversations set last_seq = 200000 where id = ${conv}`
    await sql.end()
    // The shared Redis count was loaded before the seeding: drop it so it reloads from Postgres.
    const r = await redisClient()
    await r.del(`bl:{${idb}}`)
    r.disconnect()
    const senders = [a, await register(A.url, mailDir, 'cc'), await register(B.url, mailDir, 'cd')]
    // The extra senders need a conversation with b: b writes to them first, they answer.
    for (const s of senders.slice(1)) {
      expect((await send(B.url, b, s, `open-${s.handle}`)).status).toBe(201)
    }
    // b's own sends are not to b: the backlog is still 9,990.
    const rs = await Promise.all(
      Array.from({ length: 30 }, (_, i) => send(i % 2 ? A.url : B.url, senders[i % 3]!, b, `fill-${i}`)),
    )
    const ok = rs.filter((x) => x.status === 201).length
    const full = rs.filter((x) => x.status === 429 && x.body.code === 'RECIPIENT_BACKLOGGED')
    expect(ok).toBe(10)
    expect(full.length).toBe(20)
    expect(full[0]!.body.details).toEqual({ recipient_handle: b.handle, undelivered_count: 10000 })
  })

  test('presence is the same from either side', async () => {
    const { a, b } = await pair()
    const watcher = await new WsProbe(A.url).hello(a.apiKey)
    const bws = await new WsProbe(B.url).hello(b.apiKey)
    await watcher.until(() => watcher.ofType('presence.update').some((f) => f.payload.handle === b.handle && f.payload.status === 'online'), 'online')
    expect((await a.via(A.url).getPresence(b.handle)).status).toBe('online')
    expect((await a.via(B.url).getPresence(b.handle)).status).toBe('online')
    bws.close()
    await watcher.until(() => watcher.ofType('presence.update').some((f) => f.payload.handle === b.handle && f.payload.status === 'offline'), 'offline')
    expect((await a.via(B.url).getPresence(b.handle)).status).toBe('offline')
    watcher.close()
  })

  test('a key rotated on one side closes the socket on the other', async () => {
    const b = await register(A.url, mailDir, 'rot')
    const ws = await new WsProbe(B.url).hello(b.apiKey)
    const client = b.via(A.url)
    // The registration code was sent moments ago: the per-email cooldown applies, so wait it out
    // by clearing the send log (the cooldown itself is tested elsewhere).
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    await sql`delete from otp_sends where email = ${b.email}`
    await sql.end()
    const started = Date.now() - 5
    const { pending_id } = await client.rotateKey(b.handle)
    const code = await readCode(mailDir, b.email, started)
    await client.rotateKeyVerify(b.handle, pending_id, code)
    expect(await ws.closedWith()).toEqual({ code: 1008, reason: 'API key rotated' })
  })

  test('an owner pausing on one side: sends refused on the other at once; a full pause holds pushes there; the dashboard socket on one side sees messages sent through the other', async () => {
    const { a, b } = await pair()
    const ownerA = new OwnerClient({ url: A.url, mailDir } as TestServer, `cl-owner-${Date.now().toString(36)}@example.test`)
    await ownerA.signIn()
    expect((await ownerA.claim(a.apiKey)).status).toBe(201)
    // The owner's socket on B (the other process, or whichever worker the kernel picks).
    const ownerB = new OwnerClient({ url: B.url, mailDir } as TestServer, ownerA.email)
    for (const [k, v] of ownerA.cookies) ownerB.cookies.set(k, v)
    const dash = await dashboardSocket(ownerB)
    await dash.until(() => dash.frames.some((f) => f.type === 'hello.ok'), 'hello.ok')
    await Bun.sleep(200)
    const viaA = await send(A.url, a, b, 'watched-out')
    const viaB = await send(B.url, b, a, 'watched-in')
    await dash.until(() => [viaA.body.id, viaB.body.id].every((id) => dash.frames.some((f) => f.payload?.id === id)), 'both messages on the dashboard')
    expect(dash.frames.find((f) => f.payload?.id === viaA.body.id).payload.is_own).toBe(true)
    expect(dash.frames.find((f) => f.payload?.id === viaB.body.id).payload.is_own).toBe(false)
    // Pause through A; B refuses the very next send.
    expect((await ownerA.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: 'full' })).status).toBe(200)
    await Bun.sleep(100)
    const refused = await send(B.url, a, b, 'while-paused')
    expect(refused.status).toBe(403)
    expect(refused.body.code).toBe('AGENT_PAUSED_BY_OWNER')
    // Full pause: a socket of the agent on B gets no push of a message sent through A.
    const ws = await new WsProbe(B.url).hello(a.apiKey)
    const held = await send(A.url, b, a, 'held-across')
    expect(held.status).toBe(201)
    await Bun.sleep(500)
    expect(ws.ofType('message.new').some((f) => f.payload.id === held.body.id)).toBe(false)
    await ownerA.call('POST', `/dashboard/agents/${a.handle}/unpause`)
    await ws.until(() => ws.ofType('message.new').some((f) => f.payload.id === held.body.id), 'held message after unpause on the other side')
    expect((await send(B.url, a, b, 'free-again')).status).toBe(201)
    ws.close()
    dash.close()
  })
})

describe.if(hasRedis)('Redis outage', () => {
  let redis: Subprocess
  const port = freePort()
  const startRedis = async () => {
    redis = Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdout: 'ignore', stderr: 'ignore' })
    for (let i = 0; i < 100; i++) {
      const r = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
      r.on('error', () => {})
      try {
        await r.connect()
        await r.ping()
        r.disconnect()
        return
      } catch {
        r.disconnect()
        await Bun.sleep(50)
      }
    }
    throw new Error('redis-server did not start')
  }

  beforeAll(startRedis)
  afterAll(() => {
    redis?.kill(9)
  })

  test('Redis stops mid-traffic and comes back: no 201 lost, health degrades and recovers, delivery resumes', async () => {
    const db = await createTestDatabase()
    const dataDir = mkdtempSync(join(tmpdir(), 'ac-outage-'))
    const mailDir = join(dataDir, 'mail')
    const env = { DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${port}`, DATA_DIR: dataDir, MAIL_DIR: mailDir, SHARDS: '1' }
    const A = await spawn(env)
    const B = await spawn(env)
    try {
      const a = await register(A.url, mailDir, 'oa')
      const b = await register(B.url, mailDir, 'ob')
      expect((await send(A.url, a, b, 'hi')).status).toBe(201)
      expect((await send(B.url, b, a, 'hi back')).status).toBe(201)
      const ws = await new WsProbe(B.url).hello(b.apiKey, []) // legacy mode: written frames count as delivered

      const acknowledged: string[] = []
      let i = 0
      const burst = async (count: number) => {
        for (let k = 0; k < count; k++) {
          const r = await send(A.url, a, b, `o${i++}`)
          if (r.status === 201) acknowledged.push(r.body.id)
          else expect(r.status).toBe(429)
          await Bun.sleep(25)
        }
      }
      await burst(10)
      redis.kill(9)
      await redis.exited
      await Bun.sleep(300)
      await burst(15) // Redis is gone: sends still commit
      const health = await fetch(`${A.url}/v1/health`)
      expect(health.status).toBe(503)
      expect(((await health.json()) as any).status).toBe('degraded')
      await startRedis()
      // The bus reconnects and every socket is drained again; health recovers.
      for (let t = 0; t < 100 && (await fetch(`${A.url}/v1/health`)).status !== 200; t++) await Bun.sleep(100)
      expect((await fetch(`${A.url}/v1/health`)).status).toBe(200)
      await burst(10)
      expect(acknowledged.length).toBeGreaterThanOrEqual(30)

      const seen = () => new Set(ws.ofType('message.new').map((f) => f.payload.id))
      await ws.until(() => acknowledged.every((id) => seen().has(id)), 'every acknowledged message on the socket', 15_000)
      const history = await b.via(A.url).getMessages((await b.via(B.url).listConversations())[0]!.id, { limit: 200 })
      const stored = new Set(history.map((m) => m.id))
      expect(acknowledged.filter((id) => !stored.has(id))).toEqual([])
      ws.close()
    } finally {
      await stop(A)
      await stop(B)
      await db.drop()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }, 60_000)
})

describe('graceful shutdown', () => {
  test('SIGTERM closes sockets 1001 "Server shutting down" and exits 0', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ac-term-'))
    const mailDir = join(dataDir, 'mail')
    const A = await spawn({ DATA_DIR: dataDir, MAIL_DIR: mailDir })
    try {
      const a = await register(A.url, mailDir, 'term')
      const ws = await new WsProbe(A.url).hello(a.apiKey)
      A.proc.kill('SIGTERM')
      expect(await ws.closedWith()).toEqual({ code: 1001, reason: 'Server shutting down' })
      expect(await A.proc.exited).toBe(0)
    } finally {
      A.proc.kill(9)
      rmSync(dataDir, { recursive: true, force: true })
    }
  }, 30_000)
})
