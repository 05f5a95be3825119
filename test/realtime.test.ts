import { setDefaultTimeout, afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { AgentChatClient, RealtimeClient } from 'agentchatme'
import { api, backends, clearOtpLog, establishedPair, RawWs, readCode, registerAgent, startTestServer, WsProbe, type TestServer } from './harness.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(60_000)

describe.each(await backends())('WebSocket on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend)
  })
  afterAll(async () => {
    await s?.stop()
  })

  test('HELLO auth: hello.ok first (with ack echoed), then the backlog as sync rows, oldest first', async () => {
    const { a, b } = await establishedPair(s)
    for (let i = 0; i < 3; i++) await a.client.sendMessage({ to: b.handle, content: { text: `off${i}` } })
    const ws = await new WsProbe(s.url).hello(b.apiKey, ['ack'])
    await ws.until(() => ws.ofType('message.new').length === 4, 'four drained frames')
    expect(ws.frames[0]).toEqual({ type: 'hello.ok', capabilities: ['ack'] })
    const drained = ws.ofType('message.new').map((f) => f.payload)
    expect(drained.map((p) => p.content.text)).toEqual(['hi', 'off0', 'off1', 'off2'])
    for (const p of drained) {
      expect(p.delivery_id).toMatch(/^del_[0-9a-f]{32}$/)
      expect(p.status).toBe('stored')
      expect(p.sender).toBe(a.handle)
    }
    ws.close()
  })

  test('ack mode: unacked frames are offered again on the next connection; acked ones are not', async () => {
    const { a, b } = await establishedPair(s)
    const m1 = (await a.client.sendMessage({ to: b.handle, content: { text: 'one' } })).message
    const m2 = (await a.client.sendMessage({ to: b.handle, content: { text: 'two' } })).message
    const first = await new WsProbe(s.url).hello(b.apiKey, ['ack'])
    await first.until(() => first.ofType('message.new').length === 3, 'three frames')
    // Ack only "one" (and the cold "hi").
    for (const f of first.ofType('message.new')) if (f.payload.id !== m2.id) first.send({ type: 'ack', message_id: f.payload.id })
    first.send({ type: 'ack', message_id: 'msg_unknown000000' }) // harmless
    await Bun.sleep(150)
    first.close()
    await first.closedWith()
    // The close applies this socket's acks (asynchronously); on a multi-worker backend the next
    // socket may land on the other worker, so wait until they are visible before reconnecting.
    for (let t = 0; t < 50; t++) {
      const view = await a.client.getMessages(m1.conversation_id, { limit: 3 })
      if (view.find((m) => m.id === m1.id)?.status === 'delivered') break
      await Bun.sleep(100)
    }
    const second = await new WsProbe(s.url).hello(b.apiKey, ['ack'])
    await second.until(() => second.ofType('message.new').length === 1, 'the unacked frame')
    await Bun.sleep(200)
    expect(second.ofType('message.new').map((f) => f.payload.id)).toEqual([m2.id])
    const senderView = await a.client.getMessages(m1.conversation_id, { limit: 3 })
    expect(Object.fromEntries(senderView.map((m) => [m.id, m.status]))).toMatchObject({ [m1.id]: 'delivered', [m2.id]: 'stored' })
    second.close()
  })

  test('acks out of order: the cursor waits for the gap; an ack past a gap that stays open is kept on its own; the gap closing folds it in', async () => {
    const { a, b } = await establishedPair(s)
    const m: { id: string; conversation_id: string }[] = []
    for (let i = 0; i < 3; i++) m.push((await a.client.sendMessage({ to: b.handle, content: { text: `g${i}` } })).message)
    const ws = await new WsProbe(s.url).hello(b.apiKey, ['ack'])
    await ws.until(() => ws.ofType('message.new').length === 4, 'four drained frames')
    const hi = ws.ofType('message.new')[0]!.payload
    // Ack the cold "hi", then m[2] but not m[0], m[1].
    ws.send({ type: 'ack', message_id: hi.id })
    ws.send({ type: 'ack', message_id: m[2]!.id })
    const view = async () => Object.fromEntries((await a.client.getMessages(m[0]!.conversation_id, { limit: 10 })).map((x) => [x.id, x.status]))
    let v = await view()
    for (const until = Date.now() + 8000; v[m[2]!.id] !== 'delivered' && Date.now() < until; ) {
      await Bun.sleep(100)
      v = await view()
    }
    expect(v).toMatchObject({ [hi.id]: 'delivered', [m[0]!.id]: 'stored', [m[1]!.id]: 'stored', [m[2]!.id]: 'delivered' })
    // Sync offers exactly the gap.
    expect((await b.client.sync()).map((r) => r.id)).toEqual([m[0]!.id, m[1]!.id])
    // Closing the gap moves the cursor over everything.
    ws.send({ type: 'ack', message_id: m[0]!.id })
    ws.send({ type: 'ack', message_id: m[1]!.id })
    for (const until = Date.now() + 8000; (await b.client.sync()).length > 0 && Date.now() < until; ) await Bun.sleep(100)
    expect(await b.client.sync()).toEqual([])
    const mine = [hi.id, ...m.map((x) => x.id)]
    expect(Object.entries(await view()).filter(([id, st]) => mine.includes(id) && st !== 'delivered')).toEqual([])
    ws.close()
  })

  test('legacy mode (no ack capability): frames written mark envelopes delivered', async () => {
    const { a, b } = await establishedPair(s)
    const ws = await new WsProbe(s.url).hello(b.apiKey, [])
    expect(ws.frames[0]).toEqual({ type: 'hello.ok' })
    await ws.until(() => ws.ofType('message.new').length === 1, 'drain')
    const live = (await a.client.sendMessage({ to: b.handle, content: { text: 'live' } })).message
    await ws.until(() => ws.ofType('message.new').length === 2, 'live frame')
    const frame = ws.ofType('message.new')[1]!.payload
    expect(frame.id).toBe(live.id)
    expect(frame.delivery_id).toBeUndefined() // live frames are the public message
    expect(frame.context.conversation.type).toBe('direct')
    // Applied with the next ack flush (ACK_FLUSH_MS), in whichever worker holds the socket.
    for (const until = Date.now() + 5000; (await b.client.sync()).length > 0 && Date.now() < until; ) await Bun.sleep(100)
    expect(await b.client.sync()).toEqual([])
    ws.close()
  })

  test('live push reaches every socket of the recipient, never the sender', async () => {
    const { a, b } = await establishedPair(s)
    await b.client.syncAck((await b.client.sync()).at(-1)!.delivery_id!)
    const b1 = await new WsProbe(s.url).hello(b.apiKey)
    const b2 = await new WsProbe(s.url).hello(b.apiKey)
    const aWs = await new WsProbe(s.url).hello(a.apiKey)
    const m = (await a.client.sendMessage({ to: b.handle, content: { text: 'to both' } })).message
    await b1.until(() => b1.ofType('message.new').some((f) => f.payload.id === m.id), 'b1')
    await b2.until(() => b2.ofType('message.new').some((f) => f.payload.id === m.id), 'b2')
    await Bun.sleep(100)
    expect(aWs.ofType('message.new').some((f) => f.payload.id === m.id)).toBe(false)
    for (const w of [b1, b2, aWs]) w.close()
  })

  test('HELLO failures close 1008 with the contract reasons', async () => {
    const notHello = new WsProbe(s.url)
    await notHello.opened
    notHello.send({ type: 'ping' })
    expect(await notHello.closedWith()).toEqual({ code: 1008, reason: 'HELLO frame required first' })

    const garbage = new WsProbe(s.url)
    await garbage.opened
    ;(garbage as any).ws.send('not json')
    expect(await garbage.closedWith()).toEqual({ code: 1008, reason: 'HELLO frame required first' })

    const badKey = new WsProbe(s.url)
    await badKey.opened
    badKey.send({ type: 'hello', api_key: 'ac_wrong' })
    expect(await badKey.closedWith()).toEqual({ code: 1008, reason: 'Invalid token' })

    // Docs-era clients send `token`.
    const a = await registerAgent(s)
    const token = new WsProbe(s.url)
    await token.opened
    token.send({ type: 'hello', token: a.apiKey })
    await token.until(() => token.ofType('hello.ok').length === 1, 'hello.ok')
    token.close()
  })

  test('header auth: Authorization on the upgrade, ack via x-agentchat-capabilities; bad header closes 1008', async () => {
    const a = await registerAgent(s)
    const ok = new WsProbe(s.url, { headers: { authorization: `Bearer ${a.apiKey}`, 'x-agentchat-capabilities': 'ack' } })
    await ok.until(() => ok.frames.length > 0, 'hello.ok')
    expect(ok.frames[0]).toEqual({ type: 'hello.ok', capabilities: ['ack'] })
    ok.close()
    const bad = new WsProbe(s.url, { headers: { authorization: 'Bearer ac_nope' } })
    expect(await bad.closedWith()).toEqual({ code: 1008, reason: 'Invalid token' })
  })

  test('key rotation and account deletion close live sockets 1008', async () => {
    const a = await registerAgent(s)
    const ws = await new WsProbe(s.url).hello(a.apiKey)
    await clearOtpLog(s, a.email)
    const started = Date.now() - 5
    const { pending_id } = await a.client.rotateKey(a.handle)
    const code = await readCode(s.mailDir, a.email, started)
    const { api_key } = await a.client.rotateKeyVerify(a.handle, pending_id, code)
    expect(await ws.closedWith()).toEqual({ code: 1008, reason: 'API key rotated' })

    const fresh = new AgentChatClient({ apiKey: api_key, baseUrl: s.url })
    const ws2 = await new WsProbe(s.url).hello(api_key)
    await fresh.deleteAgent(a.handle)
    expect(await ws2.closedWith()).toEqual({ code: 1008, reason: 'Account deleted' })
    const after = new WsProbe(s.url)
    await after.opened
    after.send({ type: 'hello', api_key })
    expect(await after.closedWith()).toEqual({ code: 1008, reason: 'Invalid token' })
  })

  test('suspension by community enforcement closes the agent\'s sockets 1008 "Account suspended"', async () => {
    const spammer = await registerAgent(s)
    const victims = []
    for (let i = 0; i < 10; i++) victims.push(await registerAgent(s))
    for (const v of victims) await spammer.client.sendMessage({ to: v.handle, content: { text: 'spam' } })
    const ws = await new WsProbe(s.url).hello(spammer.apiKey)
    for (const v of victims) await v.client.reportAgent(spammer.handle)
    expect(await ws.closedWith()).toEqual({ code: 1008, reason: 'Account suspended' })
    const again = new WsProbe(s.url)
    await again.opened
    again.send({ type: 'hello', api_key: spammer.apiKey })
    expect(await again.closedWith()).toEqual({ code: 1008, reason: 'Account suspended' })
  })

  test('typing relay, read acks over the socket, message.read to the sender', async () => {
    const { a, b, conversationId } = await establishedPair(s)
    const aWs = await new WsProbe(s.url).hello(a.apiKey)
    const bWs = await new WsProbe(s.url).hello(b.apiKey)
    bWs.send({ type: 'typing.start', payload: { conversation_id: conversationId } })
    await aWs.until(() => aWs.ofType('typing.start').length === 1, 'typing.start')
    expect(aWs.ofType('typing.start')[0]!.payload).toEqual({ conversation_id: conversationId, sender: b.handle })
    bWs.send({ type: 'typing.stop', payload: { conversation_id: conversationId } })
    await aWs.until(() => aWs.ofType('typing.stop').length === 1, 'typing.stop')

    const m = (await a.client.sendMessage({ to: b.handle, content: { text: 'read me' } })).message
    bWs.send({ type: 'message.read_ack', payload: { conversation_id: conversationId, through_seq: m.seq } })
    await aWs.until(() => aWs.ofType('message.read').length === 1, 'message.read')
    expect(aWs.ofType('message.read')[0]!.payload).toMatchObject({ conversation_id: conversationId, through_seq: m.seq, reader: b.handle, read_by: b.handle })
    expect((await a.client.getMessages(conversationId, { limit: 1 }))[0]!.status).toBe('read')

    // REST mark-read emits message.read with the message id.
    const m2 = (await a.client.sendMessage({ to: b.handle, content: { text: 'and me' } })).message
    await b.client.markAsRead(m2.id)
    await aWs.until(() => aWs.ofType('message.read').some((f) => f.payload.message_id === m2.id), 'message.read for m2')
    // Malformed frames are ignored, the socket stays open.
    bWs.send({ type: 'message.read_ack', payload: { conversation_id: conversationId, through_seq: 'x' } })
    bWs.send({ type: 'nonsense' })
    await Bun.sleep(100)
    expect(bWs.closed).toBeNull()
    aWs.close()
    bWs.close()
  })

  test('presence: contacts see online/offline and explicit updates', async () => {
    const { a, b } = await establishedPair(s)
    const aWs = await new WsProbe(s.url).hello(a.apiKey)
    const bWs = await new WsProbe(s.url).hello(b.apiKey)
    await aWs.until(() => aWs.ofType('presence.update').some((f) => f.payload.handle === b.handle && f.payload.status === 'online'), 'b online')
    expect(await a.client.getPresence(b.handle)).toMatchObject({ status: 'online' })
    bWs.send({ type: 'presence.update', payload: { status: 'busy', custom_message: 'thinking' } })
    await aWs.until(() => aWs.ofType('presence.update').some((f) => f.payload.status === 'busy'), 'busy')
    expect(aWs.ofType('presence.update').find((f) => f.payload.status === 'busy')!.payload).toEqual({ handle: b.handle, status: 'busy', custom_message: 'thinking' })
    await b.client.updatePresence({ status: 'online' })
    bWs.close()
    await aWs.until(() => aWs.ofType('presence.update').some((f) => f.payload.status === 'offline'), 'offline')
    const p = await a.client.getPresence(b.handle)
    expect(p.status).toBe('offline')
    expect(p.last_seen).not.toBeNull()
    aWs.close()
  })

  test('a muted sender stores and syncs but does not wake the recipient', async () => {
    const { a, b } = await establishedPair(s)
    await b.client.muteAgent(a.handle)
    const bWs = await new WsProbe(s.url).hello(b.apiKey)
    await bWs.until(() => bWs.ofType('message.new').length === 1, 'drain of the cold message')
    const m = (await a.client.sendMessage({ to: b.handle, content: { text: 'quiet' } })).message
    await Bun.sleep(300)
    expect(bWs.ofType('message.new').some((f) => f.payload.id === m.id)).toBe(false)
    expect((await b.client.sync()).some((r) => r.id === m.id)).toBe(true)
    bWs.close()
  })

  test('official RealtimeClient: live delivery, and 50 offline messages arrive in seq order, none missing or duplicated', async () => {
    const { a, b, conversationId } = await establishedPair(s)
    const sent: number[] = []
    for (let i = 0; i < 50; i++) sent.push((await a.client.sendMessage({ to: b.handle, content: { text: `o${i}` } })).message.seq)
    const seen: any[] = []
    const rt = new RealtimeClient({ apiKey: b.apiKey, baseUrl: s.url.replace(/^http/, 'ws'), client: b.client, reconnect: false })
    rt.on('message.new', (f: any) => {
      seen.push(f.payload)
    })
    await rt.connect()
    const fromA = () => seen.filter((p) => p.sender === a.handle)
    const deadline = Date.now() + 10_000
    while (fromA().length < 51 && Date.now() < deadline) await Bun.sleep(50)
    const seqs = fromA().map((p) => p.seq)
    expect(seqs).toEqual([1, ...sent]) // a's cold "hi" (seq 1) and the 50, in order, once each
    expect(new Set(fromA().map((p) => p.id)).size).toBe(51)
    // Live.
    const live = (await a.client.sendMessage({ to: b.handle, content: { text: 'live one' } })).message
    while (!seen.some((p) => p.id === live.id) && Date.now() < deadline + 5000) await Bun.sleep(20)
    expect(seen.filter((p) => p.id === live.id).length).toBe(1)
    // The live frame is acked over the socket: delivered once the ack is applied (acks are
    // applied in batches; one the cursor cannot reach yet is recorded on its own after a while).
    let statuses = await a.client.getMessages(conversationId, { limit: 1 })
    for (const until = Date.now() + 5000; statuses[0]!.status !== 'delivered' && Date.now() < until; ) {
      await Bun.sleep(100)
      statuses = await a.client.getMessages(conversationId, { limit: 1 })
    }
    expect(statuses[0]!.id).toBe(live.id)
    expect(statuses[0]!.status).toBe('delivered')
    rt.disconnect()
  }, 30_000)
})

describe('WebSocket timers and backpressure (embedded)', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer('embedded', { WS_HEARTBEAT_MS: '300', WS_PONG_TIMEOUT_MS: '200' })
  })
  afterAll(async () => {
    await s?.stop()
  })

  test('no HELLO within 5 s closes 1008 "HELLO frame required"', async () => {
    const ws = new WsProbe(s.url)
    await ws.opened
    const started = Date.now()
    expect(await ws.closedWith(8000)).toEqual({ code: 1008, reason: 'HELLO frame required' })
    expect(Date.now() - started).toBeGreaterThanOrEqual(4500)
  }, 15_000)

  test('a client that never answers pings is closed 1001 "Heartbeat timeout"; one that does stays', async () => {
    const a = await registerAgent(s)
    const raw = new RawWs(s.url)
    await raw.ready
    raw.sendText(JSON.stringify({ type: 'hello', api_key: a.apiKey }))
    await raw.waitFor(() => raw.texts.some((t) => t.includes('hello.ok')), 'hello.ok')
    await raw.waitFor(() => raw.closeCode !== null, 'close', 5000)
    expect(raw.pings).toBeGreaterThanOrEqual(1)
    expect(raw.closeCode).toBe(1001)
    expect(raw.closeReason).toBe('Heartbeat timeout')
    raw.destroy()
    const polite = await new WsProbe(s.url).hello(a.apiKey) // browsers' WebSocket pongs automatically
    await Bun.sleep(1200)
    expect(polite.closed).toBeNull()
    polite.close()
  })

  test('more than 4 MiB queued on a socket closes it 1013 "overload"', async () => {
    // Default heartbeat here: the paused client must not be closed for missing pongs first.
    const s = await startTestServer('embedded')
    try {
    const { a, b, conversationId } = await establishedPair(s)
    const aId = await s.admin.agentId(a.handle)
    const bId = await s.admin.agentId(b.handle)
    // 1,000 stored messages of ~30 KB (30 MB): more than loopback's kernel buffers can hide.
    const big = 'x'.repeat(30_000)
    await s.admin.sql(sql`
      with m as (
        insert into messages (id, conversation_id, seq, sender_id, client_msg_id, type, content, metadata)
        select 'msg_big' || g, ${conversationId}, 100 + g, ${aId}, 'big-' || g, 'text', jsonb_build_object('text', ${big}::text), '{}'
        from generate_series(1, 1000) g returning id, seq)
      select count(*) from m`)
    await s.admin.forgetBacklog(bId)
    const raw = new RawWs(s.url)
    await raw.ready
    raw.socket.pause() // stop reading: the server's send buffer must absorb everything
    raw.sendText(JSON.stringify({ type: 'hello', api_key: b.apiKey, capabilities: ['ack'] }))
    await Bun.sleep(2500)
    raw.socket.resume()
    await raw.waitFor(() => raw.closeCode !== null || raw.socket.destroyed || raw.socket.readableEnded, 'close', 10_000)
    expect(raw.closeCode).toBe(1013)
    expect(raw.closeReason).toBe('overload')
    raw.destroy()
    // Nothing was acked: every envelope is still there for the next connection.
    expect((await b.client.sync({ limit: 500 })).length).toBe(500)
    } finally {
      await s.stop()
    }
  }, 30_000)
})

describe('API surface', () => {
  test('the OpenAPI document lists the messaging routes', async () => {
    const s = await startTestServer('embedded')
    try {
      const spec = (await api(s, 'GET', '/v1/openapi.json')).json
      for (const p of ['/v1/messages', '/v1/messages/{conversation_id}', '/v1/messages/sync', '/v1/messages/sync/ack', '/v1/messages/{id}/read', '/v1/conversations', '/v1/mutes', '/v1/presence/batch']) {
        expect(spec.paths[p]).toBeDefined()
      }
      expect(spec.paths['/v1/messages'].post.responses['429'].description).toContain('RECIPIENT_BACKLOGGED')
    } finally {
      await s.stop()
    }
  })
})
