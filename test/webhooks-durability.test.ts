import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { verifyWebhook } from 'agentchatme'
import { spawnServer, type SpawnedServer } from '../load/spawn-server.ts'
import Redis from 'ioredis'
import { backends, createTestDatabase, registerAgent, TEST_REDIS_URL, type TestServer } from './harness.ts'
import { startReceiver } from './webhook-receiver.ts'

// Real server processes on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(120_000)

/*
 * The outbox across crashes and processes, on real Postgres with real `bun src/main.ts`
 * processes: a delivery pending when the server is SIGKILLed is delivered after the restart,
 * once; two processes working one database deliver each event once.
 */

const all = await backends()

describe.if(all.includes('postgres+redis'))('webhook outbox across processes (Postgres, Redis)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>
  let sql: postgres.Sql
  let rx: Awaited<ReturnType<typeof startReceiver>>
  const dataDir = mkdtempSync(join(tmpdir(), 'ac-whk-'))
  const procs: SpawnedServer[] = []
  const redisUrl = TEST_REDIS_URL.replace(/\/\d+$/, '/10')
  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: '',
    DATA_DIR: dataDir,
    MAIL_DIR: join(dataDir, 'mail'),
    WEBHOOK_ALLOW_PRIVATE: '1',
    WEBHOOK_POLL_MS: '30',
    DATABASE_POOL: '4',
    REDIS_URL: redisUrl,
    SHARDS: '1',
    ...extra,
  })
  const asServer = (p: SpawnedServer) => ({ url: p.url, mailDir: join(dataDir, 'mail') }) as TestServer
  beforeAll(async () => {
    db = await createTestDatabase()
    sql = postgres(db.url, { max: 2, onnotice: () => {} })
    rx = await startReceiver()
    const r = new Redis(redisUrl)
    await r.flushdb()
    r.disconnect()
  })
  afterAll(async () => {
    for (const p of procs) p.proc.kill(9)
    await sql?.end()
    await db?.drop()
    rx?.stop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  test('SIGKILL with a delivery pending: delivered after the restart, exactly once', async () => {
    // A dispatcher that would not poll for a minute: the event stays in the outbox.
    const first = await spawnServer(env({ DATABASE_URL: db.url, WEBHOOK_POLL_MS: '60000' }), { quiet: true })
    procs.push(first)
    const [a, b] = [await registerAgent(asServer(first)), await registerAgent(asServer(first))]
    const w = (await a.client.createWebhook({ url: `${rx.base}/ok/kill`, events: ['message.new'] })) as unknown as { id: string; secret: string }
    const sent = await b.client.sendMessage({ to: a.handle, content: { text: 'survives SIGKILL' } })
    const [pending] = await sql`select count(*)::int as n from webhook_deliveries where webhook_id = ${w.id} and state = 'pending'`
    expect(pending!.n).toBe(1) // committed with the 201
    first.proc.kill(9)
    await first.proc.exited
    const second = await spawnServer(env({ DATABASE_URL: db.url }), { quiet: true })
    procs.push(second)
    const got = await rx.wait('/ok/kill', 1)
    expect(got).toHaveLength(1)
    const p = await verifyWebhook({ payload: got[0]!.body, signature: got[0]!.stripeSignature, secret: w.secret })
    expect(p.data).toMatchObject({ id: sent.message.id })
    await Bun.sleep(1000)
    expect(rx.got.filter((r) => r.path === '/ok/kill')).toHaveLength(1)
    second.proc.kill('SIGTERM')
    await second.proc.exited
  })

  test('two processes on one database deliver each of 120 events once', async () => {
    const p1 = await spawnServer(env({ DATABASE_URL: db.url }), { quiet: true })
    const p2 = await spawnServer(env({ DATABASE_URL: db.url }), { quiet: true })
    procs.push(p1, p2)
    const target = await registerAgent(asServer(p1))
    await target.client.createWebhook({ url: `${rx.base}/ok/two`, events: ['message.new'] })
    const senders = await Promise.all(Array.from({ length: 6 }, (_, i) => registerAgent(asServer(i % 2 ? p2 : p1))))
    // Established conversations (the target replies once), then 20 sends each, through both processes.
    for (const s of senders) {
      await s.client.sendMessage({ to: target.handle, content: { text: 'hi' } })
      await target.client.sendMessage({ to: s.handle, content: { text: 'hello' } })
    }
    await Promise.all(
      senders.map(async (s, i) => {
        for (let k = 0; k < 19; k++) await s.client.sendMessage({ to: target.handle, content: { text: `m-${i}-${k}` } })
      }),
    )
    const got = await rx.wait('/ok/two', 120)
    expect(got.length).toBe(120)
    await Bun.sleep(1000)
    const all = rx.got.filter((r) => r.path === '/ok/two')
    expect(all.length).toBe(120)
    expect(new Set(all.map((r) => r.delivery)).size).toBe(120)
    const [left] = await sql`select count(*)::int as n from webhook_deliveries where state = 'pending'`
    expect(left!.n).toBe(0)
    for (const p of [p1, p2]) {
      p.proc.kill('SIGTERM')
      await p.proc.exited
    }
  })
})
