import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { AgentChatClient } from 'agentchatme'
import { api, backends, createTestDatabase, readCode, registerAgent, startTestServer, uniqueHandle, WsProbe, type Registered, type TestServer } from './harness.ts'
import { startReceiver } from './webhook-receiver.ts'
import { freePort, spawnServer } from '../load/spawn-server.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(120_000)

/*
 * Expiry (issue 16.3) on every backend: a message sent with metadata.ttl_seconds to an agent
 * that does not take it in time is never delivered — not by sync, the socket drain, long-poll or
 * history — it leaves the recipient's backlog, its sender sees `expired` and gets `message.expired`
 * on its socket and its webhook, exactly once, also across a restart; a message acked in time
 * stays delivered. Waits poll up to generous deadlines; nothing asserts a tight timing.
 */

const FAST = {
  WEBHOOK_ALLOW_PRIVATE: '1',
  WEBHOOK_POLL_MS: '50',
  WEBHOOK_TIMEOUT_MS: '1000',
  WEBHOOK_RETRY_SCHEDULE_MS: '150,150,150,150',
  ACK_FLUSH_MS: '50',
  EXPIRY_SWEEP_MS: '200',
}

async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(100)
  }
}

async function ackAll(x: Registered) {
  const rows = await x.client.sync()
  if (rows.length > 0) await x.client.syncAck(rows.at(-1)!.delivery_id!)
}

async function send(s: TestServer, from: Registered, body: Record<string, unknown>) {
  return api(s, 'POST', '/v1/messages', { key: from.apiKey, body: { client_msg_id: crypto.randomUUID(), content: { text: 'x' }, ...body } })
}

async function history(s: TestServer, who: Registered, conversationId: string) {
  const r = await api(s, 'GET', `/v1/messages/${conversationId}?limit=100`, { key: who.apiKey })
  expect(r.status).toBe(200)
  return r.json as any[]
}

async function unread(s: TestServer, who: Registered, conversationId: string) {
  const r = await api(s, 'GET', '/v1/conversations', { key: who.apiKey })
  return (r.json.conversations ?? r.json).find((c: any) => c.id === conversationId)?.unread_count as number
}

describe.each(await backends())('expiry on %s', (backend) => {
  let s: TestServer
  let rx: Awaited<ReturnType<typeof startReceiver>>
  beforeAll(async () => {
    rx = await startReceiver()
    s = await startTestServer(backend, FAST)
  })
  afterAll(async () => {
    await s?.stop()
    rx?.stop()
  })

  /** a and b with an established conversation and empty inboxes; a subscribed to message.expired. */
  async function pair() {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const first = await a.client.sendMessage({ to: b.handle, content: { text: 'hi' } })
    await b.client.sendMessage({ to: a.handle, content: { text: 'hello back' } })
    await ackAll(b)
    await ackAll(a)
    const path = `/ok/expired-${a.handle}`
    await a.client.createWebhook({ url: `${rx.base}${path}`, events: ['message.expired'] as never })
    return { a, b, conversationId: first.message.conversation_id, path }
  }

  test('a 2 s TTL to an offline agent is never drained; it leaves the backlog; the sender is told once (socket and webhook) and sees `expired`', async () => {
    const { a, b, conversationId, path } = await pair()
    const aws = await new WsProbe(s.url).hello(a.apiKey)
    const ttl = await send(s, a, { to: b.handle, content: { text: 'only if still relevant' }, metadata: { ttl_seconds: 2 } })
    expect(ttl.status).toBe(201)
    expect(ttl.json.metadata).toEqual({ ttl_seconds: 2 })
    const keep = await send(s, a, { to: b.handle, content: { text: 'no expiry' } })
    expect(keep.status).toBe(201)
    // Stored for b until then (sync is non-destructive), and counted in its backlog.
    expect((await b.client.sync()).map((m) => m.id)).toContain(ttl.json.id)
    const unreadBefore = await unread(s, b, conversationId)

    await aws.until(() => aws.ofType('message.expired').length > 0, 'message.expired frame', 20_000)
    const frame = aws.ofType('message.expired')[0]!.payload
    expect(frame).toMatchObject({ message_id: ttl.json.id, conversation_id: conversationId, client_msg_id: ttl.json.client_msg_id, recipients: [b.handle] })
    expect(Date.parse(frame.expired_at)).toBeGreaterThanOrEqual(Date.parse(frame.expires_at))
    expect(Date.parse(frame.expires_at)).toBe(Date.parse(ttl.json.created_at) + 2000)

    const [hook] = await rx.wait(path, 1)
    expect(hook!.event).toBe('message.expired')
    expect(JSON.parse(hook!.body).data).toEqual(frame)

    // Never delivered: not by sync, long-poll, the drain on connect, nor b's history.
    expect((await b.client.sync()).map((m) => m.id)).toEqual([keep.json.id])
    const polled = await api(s, 'GET', '/v1/messages/stream?timeout=1', { key: b.apiKey })
    expect(polled.json.map((m: any) => m.id)).toEqual([keep.json.id])
    const bws = await new WsProbe(s.url).hello(b.apiKey)
    await bws.until(() => bws.ofType('message.new').some((f) => f.payload.id === keep.json.id), 'the drain')
    await Bun.sleep(500)
    expect(bws.ofType('message.new').map((f) => f.payload.id)).toEqual([keep.json.id])
    expect((await history(s, b, conversationId)).map((m) => m.id)).not.toContain(ttl.json.id)
    // Out of the backlog: one unread fewer for b (the message without a TTL still counts).
    expect(await unread(s, b, conversationId)).toBe(unreadBefore - 1)

    // The sender's view: `expired`; the other message is as usual.
    const mine = await history(s, a, conversationId)
    expect(mine.find((m) => m.id === ttl.json.id)).toMatchObject({ status: 'expired', delivered_at: null, read_at: null })
    expect(mine.find((m) => m.id === keep.json.id)!.status).not.toBe('expired')

    // Exactly once, on both channels.
    await Bun.sleep(1500)
    expect(aws.ofType('message.expired')).toHaveLength(1)
    expect(new Set(rx.got.filter((r) => r.path === path).map((r) => r.delivery)).size).toBe(1)
    aws.close()
    bws.close()
  })

  test('a TTL message acked in time stays delivered: no message.expired, status delivered', async () => {
    const { a, b, conversationId, path } = await pair()
    const aws = await new WsProbe(s.url).hello(a.apiKey)
    const bws = await new WsProbe(s.url).hello(b.apiKey)
    const ttl = await send(s, a, { to: b.handle, metadata: { ttl_seconds: 2 } })
    await bws.until(() => bws.ofType('message.new').some((f) => f.payload.id === ttl.json.id), 'live push')
    bws.send({ type: 'ack', message_id: ttl.json.id })
    await until('delivered', async () => (await history(s, a, conversationId)).find((m) => m.id === ttl.json.id)?.status === 'delivered')
    await Bun.sleep(3500) // past the expiry and several sweeps
    expect(aws.ofType('message.expired')).toHaveLength(0)
    expect(rx.got.filter((r) => r.path === path)).toHaveLength(0)
    expect((await history(s, a, conversationId)).find((m) => m.id === ttl.json.id)!.status).toBe('delivered')
    expect((await history(s, b, conversationId)).map((m) => m.id)).toContain(ttl.json.id)
    aws.close()
    bws.close()
  })

  test("sync's positional ack after the expiry does not deliver it: expired, counted once", async () => {
    const { a, b, conversationId } = await pair()
    const aws = await new WsProbe(s.url).hello(a.apiKey)
    const base = await unread(s, b, conversationId)
    const ttl = await send(s, a, { to: b.handle, metadata: { ttl_seconds: 1 } })
    const later = await send(s, a, { to: b.handle })
    const rows = await b.client.sync()
    expect(rows.map((m) => m.id)).toEqual([ttl.json.id, later.json.id])
    await Bun.sleep(1500)
    // Too late for the first; the second is delivered. The cursor moves past both either way.
    expect(await b.client.syncAck(rows.at(-1)!.delivery_id!)).toEqual({ acked: 1 })
    await aws.until(() => aws.ofType('message.expired').length > 0, 'message.expired frame')
    expect(aws.ofType('message.expired')[0]!.payload).toMatchObject({ message_id: ttl.json.id, recipients: [b.handle] })
    const mine = await history(s, a, conversationId)
    expect(mine.find((m) => m.id === ttl.json.id)!.status).toBe('expired')
    expect(mine.find((m) => m.id === later.json.id)!.status).toBe('delivered')
    expect(await b.client.sync()).toEqual([])
    expect(await unread(s, b, conversationId)).toBe(base + 1)
    aws.close()
  })

  test('groups: the members that had not received it are named; the sender sees `expired`', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const { group } = await a.client.createGroup({ name: 'Expiring', member_handles: [b.handle, c.handle] })
    for (const o of [b, c]) {
      const invite = (await o.client.listGroupInvites()).find((i) => i.group_id === group.id)!
      await o.client.acceptGroupInvite(invite.id)
    }
    const aws = await new WsProbe(s.url).hello(a.apiKey)
    const bws = await new WsProbe(s.url).hello(b.apiKey)
    const ttl = await send(s, a, { conversation_id: group.id, metadata: { ttl_seconds: 2 } })
    expect(ttl.status).toBe(201)
    await bws.until(() => bws.ofType('message.new').some((f) => f.payload.id === ttl.json.id), 'live push to b')
    bws.send({ type: 'ack', message_id: ttl.json.id })
    await aws.until(() => aws.ofType('message.expired').length > 0, 'message.expired frame')
    expect(aws.ofType('message.expired')[0]!.payload).toMatchObject({ message_id: ttl.json.id, conversation_id: group.id, recipients: [c.handle] })
    expect((await history(s, a, group.id)).find((m) => m.id === ttl.json.id)!.status).toBe('expired')
    expect((await c.client.sync()).map((m) => m.id)).not.toContain(ttl.json.id)
    expect((await history(s, c, group.id)).map((m) => m.id)).not.toContain(ttl.json.id)
    expect((await history(s, b, group.id)).map((m) => m.id)).toContain(ttl.json.id)
    aws.close()
    bws.close()
  })

  test("nor is it shown to the recipient elsewhere: its thread and the conversation list's preview", async () => {
    const { a, b, conversationId } = await pair()
    const aws = await new WsProbe(s.url).hello(a.apiKey)
    const ttl = await send(s, a, { to: b.handle, content: { text: 'stale soon' }, metadata: { ttl_seconds: 1, thread_subject: 'Quick question' } })
    expect(ttl.status).toBe(201)
    const thread = ttl.json.metadata.thread_id as string
    expect(thread).toMatch(/^thr_/)
    const preview = async (who: Registered) => {
      const r = await api(s, 'GET', '/v1/conversations', { key: who.apiKey })
      return (r.json.conversations ?? r.json).find((c: any) => c.id === conversationId)?.last_message_preview ?? null
    }
    expect(await preview(b)).toContain('stale soon')
    await aws.until(() => aws.ofType('message.expired').length > 0, 'message.expired frame')
    expect(await preview(b)).toBeNull()
    expect(await preview(a)).toContain('stale soon')
    const theirs = await api(s, 'GET', `/v1/conversations/${conversationId}/threads/${thread}`, { key: b.apiKey })
    expect(theirs.json?.messages?.map((m: any) => m.id) ?? []).not.toContain(ttl.json.id)
    const mine = await api(s, 'GET', `/v1/conversations/${conversationId}/threads/${thread}`, { key: a.apiKey })
    expect(mine.json.messages.map((m: any) => m.id)).toEqual([ttl.json.id])
    aws.close()
  })

  test('validation: an integer from 1 s to 30 days, else 400 VALIDATION_ERROR in the flat envelope', async () => {
    const { a, b, conversationId } = await pair()
    for (const bad of [0, -1, 1.5, 2_592_001, '60', null, true]) {
      const r = await send(s, a, { to: b.handle, metadata: { ttl_seconds: bad } })
      expect(r.status).toBe(400)
      expect(r.json.code).toBe('VALIDATION_ERROR')
      expect(r.json.message).toContain('metadata.ttl_seconds')
      const g = await send(s, a, { conversation_id: 'grp_nope', metadata: { ttl_seconds: bad } })
      expect([g.status, g.json.code]).toEqual([400, 'VALIDATION_ERROR'])
    }
    const max = await send(s, a, { to: b.handle, metadata: { ttl_seconds: 2_592_000 } })
    expect(max.status).toBe(201)
    expect((await history(s, a, conversationId)).find((m) => m.id === max.json.id)!.status).toBe('stored')
    expect((await b.client.sync()).map((m) => m.id)).toContain(max.json.id)
  })

  if (backend !== 'embedded') {
    test('contention: many concurrent acks and sweeps on real Postgres — no deadlock, each message delivered or expired (never both), told once, backlog exact', async () => {
      const { a, b, conversationId } = await pair()
      const aws = await new WsProbe(s.url).hello(a.apiKey)
      const bws = await new WsProbe(s.url).hello(b.apiKey)
      const db = async <T,>(q: ReturnType<typeof sql>) => s.admin.sql<T>(q)
      const [{ deadlocks: before }] = await db<{ deadlocks: string }>(sql`SELECT deadlocks::text FROM pg_stat_database WHERE datname = current_database()`) as [{ deadlocks: string }]
      const N = 24
      const base = await unread(s, b, conversationId)
      const ids: string[] = []
      for (let i = 0; i < N; i++) {
        // Odd ones live a second longer: their socket acks come in time, the even ones' mostly not.
        const r = await send(s, a, { to: b.handle, content: { text: `m${i}` }, metadata: { ttl_seconds: 2 + (i % 2) } })
        expect(r.status).toBe(201)
        ids.push(r.json.id)
      }
      await bws.until(() => bws.ofType('message.new').length >= N, 'live pushes')
      const rows = await b.client.sync()
      // Around the expiry instants (the sends spread them over a few hundred ms): socket acks of
      // every message at random moments, sync acks through random positions, and (in-process)
      // extra sweepers hammering the same rows.
      const ctx = s.running?.ctx
      const t0 = Date.parse((await history(s, a, conversationId)).find((m) => m.id === ids[0])!.created_at) + 2000
      const stop = t0 + 1500
      const jobs: Promise<unknown>[] = []
      // Mostly in order (so the cursor can move), some out of order (held acks, gaps).
      const when = ids.map(() => t0 - 300 + Math.random() * 900).sort((x, y) => x - y)
      for (let i = 0; i < N; i += 2) if (Math.random() < 0.3) [when[i], when[i + 1]] = [when[i + 1]!, when[i]!]
      for (const [i, id] of ids.entries()) {
        jobs.push(Bun.sleep(Math.max(0, when[i]! - Date.now())).then(() => bws.send({ type: 'ack', message_id: id })))
      }
      for (let w = 0; w < 4; w++) {
        jobs.push(
          (async () => {
            await Bun.sleep(Math.max(0, t0 - Date.now() - 150 + Math.random() * 300))
            while (Date.now() < stop) {
              // The first half only: the second half is left to the socket acks (and to expiry).
              const r = rows[Math.floor((Math.random() * rows.length) / 2)]!
              await api(s, 'POST', '/v1/messages/sync/ack', { key: b.apiKey, body: { last_delivery_id: r.delivery_id } })
            }
          })(),
        )
        if (ctx) {
          jobs.push(
            (async () => {
              await Bun.sleep(Math.max(0, t0 - Date.now() - 50))
              while (Date.now() < stop) await ctx.expiry.sweepOnce()
            })(),
          )
        }
      }
      await Promise.all(jobs)
      if (ctx) await ctx.expiry.settled()
      // Every message is settled one way: the expired ones have a skip row; the others are
      // delivered (at or below b's cursor, or acked on its own) and have none.
      const state = await until('every message settled', async () => {
        const r = await db<{ id: string; expired: boolean; delivered: boolean; swept: boolean }>(sql`
          SELECT m.id, s.seq IS NOT NULL AS expired, m.expiry_swept_at IS NOT NULL AS swept,
                 (m.seq <= mm.delivered_seq OR d.seq IS NOT NULL) AS delivered
          FROM messages m
          JOIN agents ag ON ag.handle = ${b.handle}
          JOIN conversation_members mm ON mm.conversation_id = m.conversation_id AND mm.agent_id = ag.id
          LEFT JOIN delivery_skips s ON s.agent_id = mm.agent_id AND s.conversation_id = m.conversation_id AND s.seq = m.seq
          LEFT JOIN delivery_acks d ON d.agent_id = mm.agent_id AND d.conversation_id = m.conversation_id AND d.seq = m.seq
          WHERE m.id IN (${sql.join(ids.map((i) => sql`${i}`), sql`, `)})`)
        return r.length === N && r.every((x) => x.swept && (x.expired || x.delivered)) ? r : null
      })
      const expired = state.filter((x) => x.expired).map((x) => x.id).sort()
      console.info(`[expiry contention on ${backend}] ${expired.length} expired, ${N - expired.length} delivered`)
      // Told exactly once per expired message, and only for those.
      await until('frames', async () => aws.ofType('message.expired').length >= expired.length)
      await Bun.sleep(500)
      expect(aws.ofType('message.expired').map((f) => f.payload.message_id).sort()).toEqual(expired)
      const mine = await history(s, a, conversationId)
      for (const x of state) expect(mine.find((m) => m.id === x.id)!.status).toBe(x.expired ? 'expired' : 'delivered')
      // Nothing stored any more, and the backlog counter agrees with Postgres.
      expect(await b.client.sync()).toEqual([])
      expect(await unread(s, b, conversationId)).toBe(base + state.filter((x) => !x.expired).length)
      if (ctx) {
        const bid = await s.admin.agentId(b.handle)
        expect((await ctx.backlog.reserve(bid, 0)).before).toBe(0)
      }
      const [{ deadlocks: after }] = await db<{ deadlocks: string }>(sql`SELECT deadlocks::text FROM pg_stat_database WHERE datname = current_database()`) as [{ deadlocks: string }]
      expect(after).toBe(before)
      aws.close()
      bws.close()
    })
  }
})

const durable = (await backends()).filter((b) => b === 'embedded' || b === 'postgres')

describe.each(durable)('expiry across a restart on %s', (backend) => {
  test('stopped after the send, restarted after the expiry on the same database: the sender is told exactly once', async () => {
    const rx = await startReceiver()
    const dataDir = mkdtempSync(join(tmpdir(), 'ac-expiry-'))
    const mailDir = join(dataDir, 'mail')
    const db = backend === 'postgres' ? await createTestDatabase() : undefined
    const env: Record<string, string> = {
      DATA_DIR: dataDir,
      MAIL_DIR: mailDir,
      IP_RATE_LIMITS: 'off',
      LOG_LEVEL: 'warn',
      ...FAST,
      ...(db ? { DATABASE_URL: db.url, DATABASE_POOL: '5' } : {}),
    }
    const port = freePort()
    const url = `http://127.0.0.1:${port}`
    const start = async () => (await spawnServer(env, { port, quiet: true })).proc
    const halt = async () => {
      proc.kill('SIGTERM')
      await Promise.race([proc.exited, Bun.sleep(15_000).then(() => proc.kill(9))])
      await proc.exited
    }
    const register = async (handle: string) => {
      const email = `${handle}@example.test`
      const { pending_id } = await AgentChatClient.register({ baseUrl: url, email, handle })
      const code = await readCode(mailDir, email)
      return AgentChatClient.verify(pending_id, code, { baseUrl: url })
    }
    let proc = await start()
    try {
      const [aHandle, bHandle] = [uniqueHandle('exp-a'), uniqueHandle('exp-b')]
      const [a, b] = [await register(aHandle), await register(bHandle)]
      const first = await a.client.sendMessage({ to: bHandle, content: { text: 'hi' } })
      await b.client.sendMessage({ to: aHandle, content: { text: 'hi back' } })
      const conv = first.message.conversation_id
      await a.client.createWebhook({ url: `${rx.base}/ok/restart`, events: ['message.expired'] as never })
      const post = (ttl: number) =>
        fetch(`${url}/v1/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${a.apiKey}` },
          body: JSON.stringify({ to: bHandle, client_msg_id: crypto.randomUUID(), content: { text: `ttl ${ttl}` }, metadata: { ttl_seconds: ttl } }),
        }).then(async (r) => ((await r.json()) as any).id as string)
      // One that expires and is told before the stop…
      const early = await post(1)
      await rx.wait('/ok/restart', 1, 20_000)
      // …and one whose expiry falls while no server runs.
      const late = await post(2)
      await halt()
      await Bun.sleep(2500)
      proc = await start()
      await rx.wait('/ok/restart', 1, 20_000, (r) => r.body.includes(late))
      await Bun.sleep(2000)
      const ids = rx.got.filter((r) => r.path === '/ok/restart').map((r) => JSON.parse(r.body).data.message_id)
      expect(new Set(rx.got.filter((r) => r.path === '/ok/restart').map((r) => r.delivery)).size).toBe(2)
      expect([...new Set(ids)].sort()).toEqual([early, late].sort())
      expect((await b.client.sync()).map((m) => m.id)).not.toContain(late)
      const page = await a.client.getMessages(conv, { limit: 10 })
      expect(page.find((m) => m.id === late)?.status).toBe('expired')
      expect(page.find((m) => m.id === early)?.status).toBe('expired')
    } finally {
      await halt()
      rx.stop()
      await db?.drop()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
