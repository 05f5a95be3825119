import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { AgentChatClient } from 'agentchatme'
import { backends, createTestDatabase, flushTestCluster, readCode, TEST_REDIS_CLUSTER_NODES, TEST_REDIS_URL, type TestServer } from './harness.ts'
import { OwnerClient } from './owner-client.ts'
import { spawnServer, type SpawnedServer } from '../load/spawn-server.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * The long-poll (GET /v1/messages/stream) across processes and worker threads, as
 * test/cluster.test.ts does for sockets: real `bun src/main.ts` processes on one Postgres and one
 * Redis. A poll held on process B is woken by a message accepted on process A (pushed, muted, or
 * released by an unpause there), the per-agent cap counts polls on both, and SIGTERM answers a
 * pending poll. Redis DB 1 (two processes) and 0 (SHARDS=2), apart from the other suites' DBs.
 */

const spawn = (env: Record<string, string>) => spawnServer({ ...env, DATABASE_POOL: '5' }, { quiet: true })

async function stop(p: SpawnedServer) {
  p.proc.kill('SIGTERM')
  await Promise.race([p.proc.exited, Bun.sleep(10_000).then(() => p.proc.kill(9))])
}

interface Agent {
  handle: string
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
  return { handle, apiKey, via: (u) => new AgentChatClient({ apiKey, baseUrl: u, retry: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 } as any }) }
}

async function stream(url: string, key: string, query: string) {
  const started = Date.now()
  const res = await fetch(`${url}/v1/messages/stream?${query}`, { headers: { authorization: `Bearer ${key}` } })
  const json = (await res.json()) as any
  return { status: res.status, json, ms: Date.now() - started }
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

describe.if(modes.length > 0).each(modes.length > 0 ? modes : [['none', 'processes' as Mode]])('long-poll cluster: %s', (_name, mode) => {
  let A: SpawnedServer
  let B: SpawnedServer
  let dataDir: string
  let mailDir: string
  let db: Awaited<ReturnType<typeof createTestDatabase>>
  const redisUrl = TEST_REDIS_URL.replace(/\/\d+$/, mode === 'processes' ? '/1' : '/0')

  beforeAll(async () => {
    db = await createTestDatabase()
    dataDir = mkdtempSync(join(tmpdir(), 'ac-lp-cluster-'))
    mailDir = join(dataDir, 'mail')
    if (mode === 'cluster') await flushTestCluster()
    else {
      const r = new Redis(redisUrl)
      await r.flushdb()
      r.disconnect()
    }
    const redisEnv: Record<string, string> = mode === 'cluster' ? { REDIS_CLUSTER_NODES: TEST_REDIS_CLUSTER_NODES } : { REDIS_URL: redisUrl }
    const env = { DATABASE_URL: db.url, ...redisEnv, DATA_DIR: dataDir, MAIL_DIR: mailDir, SHARDS: mode === 'processes' ? '1' : '2', ACK_FLUSH_MS: '50' }
    A = await spawn(env)
    B = mode === 'shards' ? A : await spawn({ ...env, SHARDS: '1' })
  })
  afterAll(async () => {
    await stop(A)
    if (B !== A) await stop(B)
    await db.drop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  /** a on A, b on B, conversation established, both inboxes acked empty. */
  async function pair() {
    const a = await register(A.url, mailDir, 'lpa')
    const b = await register(B.url, mailDir, 'lpb')
    await a.via(A.url).sendMessage({ to: b.handle, content: { text: 'hi' } })
    await b.via(B.url).sendMessage({ to: a.handle, content: { text: 'hi back' } })
    for (const [x, u] of [[a, A.url], [b, B.url]] as const) {
      const rows = await x.via(u).sync()
      if (rows.length > 0) await x.via(u).syncAck(rows.at(-1)!.delivery_id!)
    }
    return { a, b }
  }

  test('polls held on B (several connections: both workers with SHARDS=2) wake at once for a message sent through A', async () => {
    const { a, b } = await pair()
    const polls = Array.from({ length: 4 }, () => stream(B.url, b.apiKey, 'timeout=30'))
    await Bun.sleep(800)
    const sentAt = Date.now()
    const sent = await a.via(A.url).sendMessage({ to: b.handle, content: { text: 'across' } })
    for (const r of await Promise.all(polls)) {
      expect(r.status).toBe(200)
      expect(r.json.map((m: any) => m.id)).toEqual([sent.message.id])
    }
    expect(Date.now() - sentAt).toBeLessThan(3_000) // woken, not the 10 s re-check
  })

  test('a muted sender: no frame, but the message sent through A wakes the polls on B', async () => {
    const { a, b } = await pair()
    await b.via(B.url).muteAgent(a.handle)
    await Bun.sleep(100)
    const polls = Array.from({ length: 3 }, () => stream(B.url, b.apiKey, 'timeout=30'))
    await Bun.sleep(800)
    const sentAt = Date.now()
    const sent = await a.via(A.url).sendMessage({ to: b.handle, content: { text: 'muted across' } })
    for (const r of await Promise.all(polls)) expect(r.json.map((m: any) => m.id)).toEqual([sent.message.id])
    expect(Date.now() - sentAt).toBeLessThan(3_000)
  })

  test('a full pause set through A holds the poll on B; the unpause through A wakes it with the held message', async () => {
    const { a, b } = await pair()
    const o = new OwnerClient({ url: A.url, mailDir } as TestServer, `lp-cl-${Date.now().toString(36)}@example.test`)
    await o.signIn()
    expect((await o.claim(b.apiKey)).status).toBe(201)
    expect((await o.call('POST', `/dashboard/agents/${b.handle}/pause`, { mode: 'full' })).status).toBe(200)
    await Bun.sleep(100)
    const held = await a.via(A.url).sendMessage({ to: b.handle, content: { text: 'held across' } })
    const paused = await stream(B.url, b.apiKey, 'timeout=1')
    expect([paused.status, paused.json]).toEqual([200, []])
    const poll = stream(B.url, b.apiKey, 'timeout=30')
    await Bun.sleep(800)
    const at = Date.now()
    expect((await o.call('POST', `/dashboard/agents/${b.handle}/unpause`)).status).toBe(200)
    expect((await poll).json.map((m: any) => m.id)).toEqual([held.message.id])
    expect(Date.now() - at).toBeLessThan(3_000)
  })

  test('the per-agent cap counts polls on both sides', async () => {
    const { b } = await pair()
    const polls = [A, A, A, B, B].map((p) => stream(p.url, b.apiKey, 'timeout=4'))
    await Bun.sleep(1_000)
    for (const p of [A, B]) {
      const r = await stream(p.url, b.apiKey, 'timeout=1')
      expect([r.status, r.json.code]).toEqual([429, 'TOO_MANY_LONG_POLLS'])
    }
    for (const r of await Promise.all(polls)) expect([r.status, r.json]).toEqual([200, []])
    expect((await stream(B.url, b.apiKey, 'timeout=1')).status).toBe(200)
  })

  test('SIGTERM answers the polls held by the stopping process with 200 [] and it exits 0', async () => {
    const { b } = await pair()
    const polls = Array.from({ length: 3 }, () => stream(B.url, b.apiKey, 'timeout=60').catch((e: Error) => ({ status: 0, json: String(e), ms: 0 })))
    await Bun.sleep(800)
    const t0 = Date.now()
    B.proc.kill('SIGTERM')
    for (const r of await Promise.all(polls)) expect([r.status, r.json]).toEqual([200, []])
    expect(Date.now() - t0).toBeLessThan(5_000)
    expect(await B.proc.exited).toBe(0)
  })
})
