import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { api, backends, registerAgent, startTestServer, type Registered, type TestServer } from './harness.ts'
import { OwnerClient } from './owner-client.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * GET /v1/messages/stream (long-poll, Context Exchange seed 001) on every backend: the sync page
 * as soon as something is deliverable, a wait that ends when a message arrives (from another
 * worker too, on `sharded`), muted messages, the timeout, validation, full pause, the per-agent
 * cap, client disconnects and server shutdown. Waits are kept to 1–3 s.
 */

let n = 0
const ownerEmail = () => `lp-owner-${Date.now().toString(36)}${(n++).toString(36)}@example.test`

async function stream(s: TestServer, key: string, query = '', signal?: AbortSignal) {
  const started = Date.now()
  const res = await fetch(`${s.url}/v1/messages/stream${query ? `?${query}` : ''}`, { headers: { authorization: `Bearer ${key}` }, signal })
  const text = await res.text()
  let json: any
  try {
    json = JSON.parse(text)
  } catch {}
  return { status: res.status, json, headers: res.headers, ms: Date.now() - started }
}

describe.each(await backends())('long-poll on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend, { ACK_FLUSH_MS: '50' })
  })
  afterAll(async () => {
    await s?.stop()
  })

  /** a and b with an established conversation, b's inbox acked to empty. */
  async function pair() {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    await a.client.sendMessage({ to: b.handle, content: { text: 'hi' } })
    await b.client.sendMessage({ to: a.handle, content: { text: 'hello back' } })
    await ackAll(b)
    await ackAll(a)
    return { a, b }
  }

  async function ackAll(x: Registered) {
    const rows = await x.client.sync()
    if (rows.length > 0) await x.client.syncAck(rows.at(-1)!.delivery_id!)
  }

  test('answers at once with the sync rows when something is stored; same shape as sync; non-destructive until acked', async () => {
    const { a, b } = await pair()
    const sent = await a.client.sendMessage({ to: b.handle, content: { text: 'waiting for you' } })
    const r = await stream(s, b.apiKey, 'timeout=20')
    expect(r.status).toBe(200)
    expect(r.ms).toBeLessThan(5_000)
    expect(Array.isArray(r.json)).toBe(true)
    const synced = await b.client.sync()
    expect(r.json).toEqual(JSON.parse(JSON.stringify(synced)))
    expect(r.json.map((m: any) => m.id)).toEqual([sent.message.id])
    const deliveryId: string = r.json[0].delivery_id
    expect(deliveryId).toMatch(/^del_[0-9a-f]{32}$/)
    expect(r.json[0]).toMatchObject({ id: sent.message.id, status: 'stored', content: { text: 'waiting for you' } })
    // Non-destructive: asked again, the same row; after the positional ack, nothing (timeout 1 → []).
    expect((await stream(s, b.apiKey, 'timeout=1')).json.map((m: any) => m.id)).toEqual([sent.message.id])
    expect(await b.client.syncAck(deliveryId)).toEqual({ acked: 1 })
    const after = await stream(s, b.apiKey, 'timeout=1')
    expect([after.status, after.json]).toEqual([200, []])
    // `limit` and `after` work as in sync.
    const more = [await a.client.sendMessage({ to: b.handle, content: { text: 'one' } }), await a.client.sendMessage({ to: b.handle, content: { text: 'two' } })]
    const first = await stream(s, b.apiKey, 'timeout=5&limit=1')
    expect(first.json.map((m: any) => m.id)).toEqual([more[0]!.message.id])
    const second = await stream(s, b.apiKey, `timeout=5&after=${first.json[0].delivery_id}`)
    expect(second.json.map((m: any) => m.id)).toEqual([more[1]!.message.id])
  })

  test('waits, and answers as soon as a message arrives (sent by another agent through the SDK)', async () => {
    const { a, b } = await pair()
    const poll = stream(s, b.apiKey, 'timeout=30')
    await Bun.sleep(700)
    const sentAt = Date.now()
    const sent = await a.client.sendMessage({ to: b.handle, content: { text: 'wake up' } })
    const r = await poll
    expect(r.status).toBe(200)
    expect(r.json.map((m: any) => m.id)).toEqual([sent.message.id])
    expect(r.ms).toBeGreaterThanOrEqual(600) // it did wait
    expect(Date.now() - sentAt).toBeLessThan(3_000) // and ended with the message, not the timeout or the 10 s re-check
  })

  test('several polls of one agent all wake; a group message wakes its members', async () => {
    const { a, b } = await pair()
    const c = await registerAgent(s)
    const g = await a.client.createGroup({ name: 'lp group' } as any)
    const groupId = (g as any).group?.id ?? (g as any).id
    for (const x of [b, c]) {
      await a.client.addGroupMember(groupId, x.handle)
      const invites = await x.client.listGroupInvites()
      await x.client.acceptGroupInvite(invites.find((i) => i.group_id === groupId)!.id)
    }
    await ackAll(b)
    await ackAll(c)
    const polls = [stream(s, b.apiKey, 'timeout=30'), stream(s, b.apiKey, 'timeout=30'), stream(s, c.apiKey, 'timeout=30')]
    await Bun.sleep(700)
    const sentAt = Date.now()
    const m = await a.client.sendMessage({ conversation_id: groupId, content: { text: 'to the group' } })
    for (const r of await Promise.all(polls)) {
      expect(r.status).toBe(200)
      expect(r.json.map((x: any) => x.id)).toContain(m.message.id)
    }
    expect(Date.now() - sentAt).toBeLessThan(3_000)
  })

  test("a muted sender's message gets no frame but is deliverable: it wakes the poll; so does a muted conversation's", async () => {
    const { a, b } = await pair()
    await b.client.muteAgent(a.handle)
    const poll = stream(s, b.apiKey, 'timeout=30')
    await Bun.sleep(700)
    const sentAt = Date.now()
    const sent = await a.client.sendMessage({ to: b.handle, content: { text: 'muted but stored' } })
    const r = await poll
    expect(r.json.map((m: any) => m.id)).toEqual([sent.message.id])
    expect(Date.now() - sentAt).toBeLessThan(3_000)
    await b.client.syncAck(r.json[0].delivery_id)
    await b.client.unmuteAgent(a.handle)
    await b.client.muteConversation(sent.message.conversation_id)
    const poll2 = stream(s, b.apiKey, 'timeout=30')
    await Bun.sleep(700)
    const sentAt2 = Date.now()
    const sent2 = await a.client.sendMessage({ to: b.handle, content: { text: 'conversation muted' } })
    expect((await poll2).json.map((m: any) => m.id)).toEqual([sent2.message.id])
    expect(Date.now() - sentAt2).toBeLessThan(3_000)
  })

  test('times out with [] when nothing arrives; default and range; 400 outside 1..60', async () => {
    const { b } = await pair()
    const r = await stream(s, b.apiKey, 'timeout=1')
    expect([r.status, r.json]).toEqual([200, []])
    expect(r.ms).toBeGreaterThanOrEqual(900)
    expect(r.ms).toBeLessThan(4_000)
    for (const bad of ['0', '61', '-1', '1000000']) {
      const x = await stream(s, b.apiKey, `timeout=${bad}`)
      expect([x.status, x.json.code]).toEqual([400, 'VALIDATION_ERROR'])
      expect(x.json.details.fieldErrors.timeout).toBeDefined()
    }
    for (const bad of ['abc', '1.5']) expect((await stream(s, b.apiKey, `timeout=${bad}`)).status).toBe(400)
    expect((await api(s, 'GET', '/v1/messages/stream?timeout=1')).status).toBe(401)
    // A malformed cursor is refused (sync answers [] to it; a poll would wait for nothing).
    const bad = await stream(s, b.apiKey, 'timeout=1&after=nonsense')
    expect([bad.status, bad.json.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(bad.json.details.fieldErrors.after).toBeDefined()
  })

  // Once (embedded): Bun closes a request silent for 10 s unless the route lifts it, and the 10 s
  // safety re-check must not end the wait early.
  test.if(backend === 'embedded')('a poll longer than Bun\'s 10 s idle timeout completes with [] at its own timeout', async () => {
    const { b } = await pair()
    const r = await stream(s, b.apiKey, 'timeout=11')
    expect([r.status, r.json]).toEqual([200, []])
    expect(r.ms).toBeGreaterThanOrEqual(10_900)
  })

  test('fully paused: [] after the timeout even with messages stored; unpausing wakes a pending poll with them', async () => {
    const { a, b } = await pair()
    const o = new OwnerClient(s, ownerEmail())
    await o.signIn()
    expect((await o.claim(b.apiKey)).status).toBe(201)
    expect((await o.call('POST', `/dashboard/agents/${b.handle}/pause`, { mode: 'full' })).status).toBe(200)
    const held = await a.client.sendMessage({ to: b.handle, content: { text: 'held' } })
    const r = await stream(s, b.apiKey, 'timeout=1')
    expect([r.status, r.json]).toEqual([200, []])
    expect(r.ms).toBeGreaterThanOrEqual(900) // not at once: a paused client does not spin
    expect(await b.client.sync()).toEqual([])
    // A poll pending while paused answers as soon as the owner unpauses.
    const poll = stream(s, b.apiKey, 'timeout=30')
    await Bun.sleep(700)
    const unpausedAt = Date.now()
    expect((await o.call('POST', `/dashboard/agents/${b.handle}/unpause`)).status).toBe(200)
    const after = await poll
    expect(after.json.map((m: any) => m.id)).toEqual([held.message.id])
    expect(Date.now() - unpausedAt).toBeLessThan(3_000)
  })

  test('at most 5 concurrent polls per agent (429 TOO_MANY_LONG_POLLS); a slot frees when a poll ends or its client goes away', async () => {
    const { b } = await pair()
    const aborts = Array.from({ length: 5 }, () => new AbortController())
    const polls = aborts.map((c) => stream(s, b.apiKey, 'timeout=20', c.signal).catch((e) => e))
    await Bun.sleep(1_000)
    const sixth = await stream(s, b.apiKey, 'timeout=1')
    expect([sixth.status, sixth.json.code]).toEqual([429, 'TOO_MANY_LONG_POLLS'])
    expect(sixth.headers.get('retry-after')).toBe('1')
    expect(sixth.json.details).toMatchObject({ limit: 5 })
    // Other agents are not affected.
    const other = await registerAgent(s)
    expect((await stream(s, other.apiKey, 'timeout=1')).status).toBe(200)
    // Clients hang up: their slots come back without waiting for their 20 s.
    for (const c of aborts) c.abort()
    await Promise.all(polls)
    let status = 0
    for (let i = 0; i < 40 && status !== 200; i++) {
      status = (await stream(s, b.apiKey, 'timeout=1')).status
      if (status !== 200) await Bun.sleep(100)
    }
    expect(status).toBe(200)
    // A burst of 8 at once: exactly 5 admitted.
    const burst = await Promise.all(Array.from({ length: 8 }, () => stream(s, b.apiKey, 'timeout=2')))
    expect(burst.filter((x) => x.status === 200).length).toBe(5)
    expect(burst.filter((x) => x.status === 429).length).toBe(3)
  })

  test('shutdown: a pending poll is answered 200 [] promptly, not left hanging', async () => {
    const s2 = await startTestServer(backend)
    let stopped = false
    try {
      const b = await registerAgent(s2)
      const poll = stream(s2, b.apiKey, 'timeout=60').catch((e: Error) => ({ status: 0, json: String(e), ms: 0, headers: new Headers() }))
      await Bun.sleep(800)
      const t0 = Date.now()
      const stopping = s2.stop()
      const r = await poll
      expect([r.status, r.json]).toEqual([200, []])
      expect(Date.now() - t0).toBeLessThan(5_000)
      await stopping
      stopped = true
    } finally {
      if (!stopped) await s2.stop()
    }
  })
})
