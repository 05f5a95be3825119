import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import Redis from 'ioredis'
import { createContext } from '../src/boot.ts'
import { loadConfig } from '../src/config.ts'
import type { AppContext } from '../src/context.ts'
import { newId } from '../src/lib/ids.ts'
import type { WriteJob } from '../src/modules/messages/writer.ts'
import { seedAgents, seedPairs, type SeededPair } from '../load/seed-lib.ts'
import { spawnServer, type SpawnedServer } from '../load/spawn-server.ts'
import { backends, createTestDatabase, TEST_REDIS_URL } from './harness.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(120_000)

/*
 * The hot path under contention, on real Postgres (issue 11): many concurrent sends squeezed into
 * a few conversations, through several writer lanes in two writers at once, with acks and sync
 * acks moving the same members' cursors meanwhile. Nothing here is timed. What must hold:
 * Postgres detected no deadlock (pg_stat_database.deadlocks unchanged), every send committed
 * exactly once, and seqs are gap-free per conversation.
 */

const all = await backends()

async function deadlocks(sql: postgres.Sql, db: string): Promise<number> {
  // Statistics are flushed by backends at most about once a second.
  await Bun.sleep(1500)
  await sql`select pg_stat_clear_snapshot()`
  const [r] = await sql`select deadlocks from pg_stat_database where datname = ${db}`
  return Number(r?.deadlocks ?? 0)
}

async function checkConversations(sql: postgres.Sql, convs: string[], perConversation: Map<string, number>) {
  for (const c of convs) {
    const rows = await sql`select seq, client_msg_id from messages where conversation_id = ${c} order by seq`
    const gaps = rows.filter((r, i) => Number(r.seq) !== i + 1).length
    if (gaps || rows.length !== (perConversation.get(c) ?? 0))
      console.error(`[contention] ${c}: ${rows.length} rows, ${perConversation.get(c) ?? 0} sent, ${gaps} out of place`)
    // The seeded conversations start empty: seqs 1..n with no gap, no duplicate client_msg_id.
    expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1))
    expect(new Set(rows.map((r) => r.client_msg_id)).size).toBe(rows.length)
    expect(rows.length).toBe(perConversation.get(c) ?? 0)
    const [cv] = await sql`select last_seq from conversations where id = ${c}`
    expect(Number(cv!.last_seq)).toBe(rows.length)
  }
}

describe.if(all.includes('postgres')).each(all.filter((b) => b === 'postgres' || b === 'postgres+redis'))('contention on %s (two writers in one process)', (backend) => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>
  let ctxs: AppContext[] = []
  let sql: postgres.Sql
  const dataDir = mkdtempSync(join(tmpdir(), 'ac-contention-'))
  beforeAll(async () => {
    db = await createTestDatabase()
    if (backend === 'postgres+redis') {
      const r = new Redis(TEST_REDIS_URL)
      await r.flushdb()
      r.disconnect()
    }
    // WRITER_MAX_WAIT_MS lifted as for every test (test/preload.ts): 2,000 queued sends must all commit.
    const env = { DATABASE_URL: db.url, DATA_DIR: dataDir, LOG_LEVEL: 'silent', WRITER_CONCURRENCY: '4', DATABASE_POOL: '8', WRITER_MAX_WAIT_MS: process.env.WRITER_MAX_WAIT_MS!, ...(backend === 'postgres+redis' ? { REDIS_URL: TEST_REDIS_URL } : {}) }
    // Two contexts with their own pools and writers: to Postgres, two processes.
    ctxs = [await createContext(loadConfig(env)), await createContext(loadConfig(env), false)]
    sql = postgres(db.url, { max: 2, onnotice: () => {} })
  })
  afterAll(async () => {
    for (const c of ctxs) {
      await c.writer.flushed()
      await c.acks.drain()
      await c.bus.close()
      await c.counters.close()
      c.redis?.disconnect()
      c.limitsRedis?.disconnect()
      await c.database.close()
    }
    await sql?.end()
    await db?.drop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  test('2,000 sends over 8 conversations through 2 × 4 writer lanes, acks and sync acks meanwhile: no deadlock, each committed once, seqs gap-free', async () => {
    const agents = await seedAgents(db.url, 16, 'ct')
    const pairs = await seedPairs(db.url, agents)
    const before = await deadlocks(sql, db.url.split('/').pop()!)
    const perConversation = new Map<string, number>()
    const writes: Promise<unknown>[] = []
    const acks: Promise<unknown>[] = []
    for (let i = 0; i < 2000; i++) {
      const p = pairs[i % pairs.length]!
      // Both sides of each conversation write, through both writers.
      const [from, to] = i % 3 === 0 ? [p.b, p.a] : [p.a, p.b]
      const job: WriteJob = { id: newId('msg'), conversationId: p.conversationId, senderId: from.id, clientMsgId: `ct-${i}`, type: 'text', content: { text: `c${i}` }, metadata: {}, createdAt: new Date() }
      perConversation.set(p.conversationId, (perConversation.get(p.conversationId) ?? 0) + 1)
      const ctx = ctxs[i % 2]!
      writes.push(
        ctx.writer.write(job).then((r) => {
          // The recipient acks through the other context, at once: cursors move while writers write.
          ctxs[(i + 1) % 2]!.acks.markDelivered(to.id, r.message.id)
          // Now and then a positional sync ack for the sender's own inbox, from a third direction.
          if (i % 97 === 0) acks.push(import('../src/modules/sync/queries.ts').then((q) => q.ackThrough(ctx, from.id, 1n << 60n)))
        }),
      )
      // A few replays of sends already queued: committed once, answered as replays.
      if (i % 250 === 0) writes.push(ctxs[(i + 1) % 2]!.writer.write({ ...job, id: newId('msg') }))
      if (i % 50 === 0) await Bun.sleep(1) // let flushes interleave with new work
    }
    await Promise.all(writes)
    await Promise.all(acks)
    for (const c of ctxs) await c.acks.drain()
    await checkConversations(sql, pairs.map((p) => p.conversationId), perConversation)
    expect(await deadlocks(sql, db.url.split('/').pop()!)).toBe(before)
    // Every message was acked: each member's cursor reached the end of its conversation (out-of-order
    // acks were held until their gaps closed).
    for (let round = 0; round < 10; round++) {
      for (const c of ctxs) await c.acks.drain()
      const behind = await sql`select count(*)::int as n from conversation_members mm join conversations c on c.id = mm.conversation_id
        where mm.conversation_id in ${sql(pairs.map((p) => p.conversationId))} and mm.delivered_seq < c.last_seq
          and exists (select 1 from messages m where m.conversation_id = mm.conversation_id and m.seq > mm.delivered_seq and m.sender_id <> mm.agent_id)`
      if (behind[0]!.n === 0) break
      await Bun.sleep(1100)
    }
    const [left] = await sql`select count(*)::int as n from conversation_members mm join conversations c on c.id = mm.conversation_id
      where mm.conversation_id in ${sql(pairs.map((p) => p.conversationId))}
        and exists (select 1 from messages m where m.conversation_id = mm.conversation_id and m.seq > mm.delivered_seq and m.sender_id <> mm.agent_id
          and not exists (select 1 from delivery_acks d where d.agent_id = mm.agent_id and d.conversation_id = m.conversation_id and d.seq = m.seq))`
    expect(left!.n).toBe(0)
  })
})

describe.if(all.includes('postgres+redis') || all.includes('sharded'))('contention across two processes (SHARDS=2 each) over HTTP', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>
  let procs: SpawnedServer[] = []
  let sql: postgres.Sql
  let pairs: SeededPair[] = []
  const dataDir = mkdtempSync(join(tmpdir(), 'ac-contention-http-'))
  const redisUrl = TEST_REDIS_URL.replace(/\/\d+$/, '/8')
  beforeAll(async () => {
    db = await createTestDatabase()
    const r = new Redis(redisUrl)
    await r.flushdb()
    r.disconnect()
    const env = { DATABASE_URL: db.url, REDIS_URL: redisUrl, DATA_DIR: dataDir, SHARDS: '2', DATABASE_POOL: '5' }
    procs.push(await spawnServer(env, { quiet: true }))
    procs.push(await spawnServer(env, { quiet: true }))
    sql = postgres(db.url, { max: 2, onnotice: () => {} })
    // System agents (200 sends/s each): the per-agent limit is not what this test is about.
    const agents = await seedAgents(db.url, 16, 'cth')
    await sql`update agents set is_system = true where id in ${sql(agents.map((a) => a.id))}`
    pairs = await seedPairs(db.url, agents)
  })
  afterAll(async () => {
    for (const p of procs) {
      p.proc.kill('SIGTERM')
      await Promise.race([p.proc.exited, Bun.sleep(10_000).then(() => p.proc.kill(9))])
    }
    await sql?.end()
    await db?.drop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  test('2,000 sends over 8 conversations, requests alternating between the processes, receivers acking on sockets: no deadlock, each committed once, seqs gap-free', async () => {
    const dbName = db.url.split('/').pop()!
    const before = await deadlocks(sql, dbName)
    // Every agent on a socket with `ack`, on the process its partner does not send through.
    const sockets: WebSocket[] = []
    await Promise.all(
      pairs.flatMap((p, i) =>
        [p.a, p.b].map(
          (agent, k) =>
            new Promise<void>((resolve, reject) => {
              const ws = new WebSocket(`${procs[(i + k) % 2]!.url.replace('http', 'ws')}/v1/ws`)
              sockets.push(ws)
              ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', api_key: agent.apiKey, capabilities: ['ack'] }))
              ws.onerror = () => reject(new Error('ws error'))
              ws.onmessage = (e) => {
                const f = JSON.parse(String(e.data))
                if (f.type === 'hello.ok') resolve()
                if (f.type === 'message.new') ws.send(JSON.stringify({ type: 'ack', message_id: f.payload.id }))
              }
            }),
        ),
      ),
    )
    const perConversation = new Map<string, number>()
    const sends: Promise<number | string>[] = []
    for (let i = 0; i < 2000; i++) {
      const p = pairs[i % pairs.length]!
      const [from, to] = i % 2 === 0 ? [p.a, p.b] : [p.b, p.a]
      perConversation.set(p.conversationId, (perConversation.get(p.conversationId) ?? 0) + 1)
      sends.push(
        fetch(`${procs[i % 2]!.url}/v1/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${from.apiKey}` },
          body: JSON.stringify({ to: to.handle, client_msg_id: `h-${i}`, content: { text: `h${i}` } }),
        }).then(async (r) => {
          const body = await r.text()
          return r.status === 201 ? 201 : `${r.status} ${body}`
        }, (e: unknown) => `fetch failed: ${String(e)}`),
      )
      // Paced at about 1,000/s: well under 8 × 2 × 200/s per agent, far past one flush at a time.
      if (i % 20 === 19) await Bun.sleep(20)
    }
    const statuses = await Promise.all(sends)
    const refused = statuses.filter((st) => st !== 201)
    // CI prints only part of a failure: the first refusals go to stderr as one line.
    if (refused.length) console.error(`[contention] ${refused.length} sends not 201, first: ${JSON.stringify(refused.slice(0, 5))}`)
    expect(refused).toEqual([])
    await checkConversations(sql, pairs.map((p) => p.conversationId), perConversation)
    expect(await deadlocks(sql, dbName)).toBe(before)
    for (const ws of sockets) ws.close()
  })
})
