import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { api, backends, registerAgent, rejection, startTestServer, WsProbe, type Registered, type TestServer } from './harness.ts'
import { OwnerClient } from './owner-client.ts'
import { startReceiver } from './webhook-receiver.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * The seed systems' extensions beside the AgentChat wire (issue 14): permission contracts and
 * approvals and threads (Context Exchange), x-api-key and X-RateLimit-* (AgentSend), sender_name
 * (Thenvoi), strict bodies and quotas — on every backend, through the SDK where it has a method.
 */

describe.each(await backends())('extensions on %s', (backend) => {
  let s: TestServer
  let rx: Awaited<ReturnType<typeof startReceiver>>
  beforeAll(async () => {
    rx = await startReceiver()
    s = await startTestServer(backend, { WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_POLL_MS: '50' })
  })
  afterAll(async () => {
    await s?.stop()
    rx?.stop()
  })

  /** Two agents that are contacts of each other with an established conversation. */
  async function connected(): Promise<[Registered, Registered]> {
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    await a.client.addContact(b.handle)
    await b.client.addContact(a.handle)
    await a.client.sendMessage({ to: b.handle, content: { text: 'hi' } })
    await b.client.sendMessage({ to: a.handle, content: { text: 'hello' } })
    return [a, b]
  }

  test('contracts: presets without auth; per-contact levels default to friends; PATCH one category makes it custom', async () => {
    const presets = await api(s, 'GET', '/v1/contracts')
    expect(presets.status).toBe(200)
    expect(presets.json.contracts.map((c: any) => c.name)).toEqual(['friends', 'coworkers', 'casual'])
    const [a, b] = await connected()
    const view = await api(s, 'GET', `/v1/contacts/${b.handle}/permissions`, { key: a.apiKey })
    expect(view.json).toEqual({ contract: 'friends', permissions: { info: 'auto', requests: 'auto', personal: 'ask' } })
    const patched = await api(s, 'PATCH', `/v1/contacts/${b.handle}/permissions`, { key: a.apiKey, body: { category: 'info', level: 'never' } })
    expect(patched.json).toEqual({ contract: 'custom', permissions: { info: 'never', requests: 'auto', personal: 'ask' } })
    const preset = await api(s, 'PATCH', `/v1/contacts/${b.handle}/permissions`, { key: a.apiKey, body: { contract: 'coworkers' } })
    expect(preset.json).toEqual({ contract: 'coworkers', permissions: { info: 'auto', requests: 'auto', personal: 'never' } })
    const stranger = await registerAgent(s)
    expect((await api(s, 'GET', `/v1/contacts/${stranger.handle}/permissions`, { key: a.apiKey })).status).toBe(404)
    expect((await api(s, 'PATCH', `/v1/contacts/${b.handle}/permissions`, { key: a.apiKey, body: { category: 'mood', level: 'auto' } })).status).toBe(400)
  })

  test('a held send that opens a thread opens it when approved (the hold keeps the send as made)', async () => {
    const [a, b] = await connected()
    const held = await api(s, 'POST', '/v1/messages', {
      key: a.apiKey,
      body: { to: b.handle, client_msg_id: 'held-thread', content: { text: 'a private matter' }, metadata: { category: 'personal', thread_subject: 'Private' } },
    })
    expect(held.status).toBe(202)
    const ok = await api(s, 'POST', `/v1/approvals/${held.json.approval_id}/approve`, { key: b.apiKey })
    expect(ok.status).toBe(200)
    const m = (await b.client.getMessages((await a.client.sendMessage({ to: b.handle, content: { text: 'ping' } })).message.conversation_id, { limit: 5 })).find(
      (x) => x.id === ok.json.approval.message_id,
    )!
    expect(m.metadata.thread_subject).toBe('Private')
    expect(String(m.metadata.thread_id)).toMatch(/^thr_/)
    const thread = await api(s, 'GET', `/v1/conversations/${m.conversation_id}/threads/${m.metadata.thread_id}`, { key: b.apiKey })
    expect(thread.status).toBe(200)
    expect(thread.json.messages.map((x: any) => x.id)).toEqual([m.id])
  })

  test('categories: never → 403 CATEGORY_BLOCKED, ask → 202 held until approved (sender told), auto or none → delivered', async () => {
    const [a, b] = await connected()
    await a.client.createWebhook({ url: `${rx.base}/ok/apr-${backend}-${a.handle}`, events: ['message.approved', 'message.rejected'] as never })
    // b accepts a's `info` never, `personal` ask (friends).
    await api(s, 'PATCH', `/v1/contacts/${a.handle}/permissions`, { key: b.apiKey, body: { category: 'info', level: 'never' } })
    const blocked = await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'fyi' }, metadata: { category: 'info' } }))
    expect(blocked.code).toBe('CATEGORY_BLOCKED')
    const bad = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, client_msg_id: 'c-bad', content: { text: 'x' }, metadata: { category: 'gossip' } } })
    expect(bad.json.code).toBe('VALIDATION_ERROR')
    const okReq = await a.client.sendMessage({ to: b.handle, content: { text: 'please review' }, metadata: { category: 'requests' } })
    expect(okReq.message.seq).toBeGreaterThan(0)
    const aws = await new WsProbe(s.url).hello(a.apiKey)
    const held = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, client_msg_id: 'held-1', content: { text: 'how are you feeling?' }, metadata: { category: 'personal' } } })
    expect(held.status).toBe(202)
    expect(held.json.status).toBe('pending_approval')
    expect(held.json.approval_id).toMatch(/^apr_/)
    // Retried with the same client_msg_id: the same request.
    const retry = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, client_msg_id: 'held-1', content: { text: 'how are you feeling?' }, metadata: { category: 'personal' } } })
    expect(retry.json.approval_id).toBe(held.json.approval_id)
    // Not delivered while held.
    expect(((await b.client.sync()) as any[]).some((r) => r.content?.text === 'how are you feeling?')).toBe(false)
    const pending = (await api(s, 'GET', '/v1/approvals', { key: b.apiKey })).json.approvals
    expect(pending.map((p: any) => [p.id, p.from, p.category])).toEqual([[held.json.approval_id, a.handle, 'personal']])
    expect((await api(s, 'POST', `/v1/approvals/${held.json.approval_id}/approve`, { key: a.apiKey })).status).toBe(404) // not the sender's to decide
    const ok = await api(s, 'POST', `/v1/approvals/${held.json.approval_id}/approve`, { key: b.apiKey })
    expect(ok.status).toBe(200)
    expect(ok.json.approval.status).toBe('approved')
    expect(((await b.client.sync()) as any[]).some((r) => r.id === ok.json.approval.message_id)).toBe(true)
    await aws.until(() => aws.ofType('message.approved').some((f) => f.payload.approval_id === held.json.approval_id), 'message.approved frame')
    expect((await api(s, 'POST', `/v1/approvals/${held.json.approval_id}/reject`, { key: b.apiKey })).json.code).toBe('ALREADY_DECIDED')
    // A second one, rejected: never delivered, the sender told.
    const held2 = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, client_msg_id: 'held-2', content: { text: 'secret' }, metadata: { category: 'personal' } } })
    const no = await api(s, 'POST', `/v1/approvals/${held2.json.approval_id}/reject`, { key: b.apiKey })
    expect(no.json.approval.status).toBe('rejected')
    await aws.until(() => aws.ofType('message.rejected').some((f) => f.payload.approval_id === held2.json.approval_id), 'message.rejected frame')
    // The sender's webhooks get both outcomes.
    const hooks = await rx.wait(`/ok/apr-${backend}-${a.handle}`, 2)
    expect(hooks.map((h) => h.event).sort()).toEqual(['message.approved', 'message.rejected'])
    expect(JSON.parse(hooks.find((h) => h.event === 'message.approved')!.body).data).toMatchObject({ approval_id: held.json.approval_id, recipient_handle: b.handle })
    aws.close()
  })

  test('the recipient\'s owner approves a held message from the dashboard; two concurrent decisions: one wins', async () => {
    const [a, b] = await connected()
    const o = new OwnerClient(s, `ext-owner-${Date.now().toString(36)}@example.test`)
    await o.signIn()
    await o.claim(b.apiKey)
    const held = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, client_msg_id: 'own-1', content: { text: 'for the owner' }, metadata: { category: 'personal' } } })
    const list = await o.call('GET', `/dashboard/agents/${b.handle}/approvals`)
    expect(list.json.approvals.map((x: any) => x.id)).toEqual([held.json.approval_id])
    const [x, y] = await Promise.all([
      o.call('POST', `/dashboard/agents/${b.handle}/approvals/${held.json.approval_id}/approve`),
      api(s, 'POST', `/v1/approvals/${held.json.approval_id}/reject`, { key: b.apiKey }),
    ])
    expect([x.status, y.status].sort()).toEqual([200, 409])
    const delivered = ((await b.client.sync()) as any[]).filter((r) => r.client_msg_id === 'own-1').length
    expect(delivered).toBe(x.status === 200 ? 1 : 0)
  })

  test('threads: a subject opens one (thr_ id returned), replies join it, unknown ids 404, listed newest first, read in seq order', async () => {
    const [a, b] = await connected()
    const opened = await a.client.sendMessage({ to: b.handle, content: { text: 'Q3 plan' }, metadata: { thread_subject: 'Planning Q3' } })
    const tid = (opened.message.metadata as any).thread_id
    expect(tid).toMatch(/^thr_/)
    const other = await b.client.sendMessage({ to: a.handle, content: { text: 'lunch?' }, metadata: { thread_subject: 'Lunch' } })
    const otherId = (other.message.metadata as any).thread_id
    await Bun.sleep(5)
    const reply = await b.client.sendMessage({ to: a.handle, content: { text: 'draft attached' }, metadata: { thread_id: tid } })
    expect((reply.message.metadata as any).thread_id).toBe(tid)
    const unknown = await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'x' }, metadata: { thread_id: 'thr_AAAAAAAAAAAAAAAA' } }))
    expect(unknown.code).toBe('THREAD_NOT_FOUND')
    const conv = opened.message.conversation_id
    const threads = (await api(s, 'GET', `/v1/conversations/${conv}/threads`, { key: a.apiKey })).json.threads
    expect(threads.map((t: any) => [t.thread_id, t.subject, t.message_count])).toEqual([
      [tid, 'Planning Q3', 2],
      [otherId, 'Lunch', 1],
    ])
    const one = (await api(s, 'GET', `/v1/conversations/${conv}/threads/${tid}`, { key: b.apiKey })).json
    expect(one.messages.map((m: any) => m.content.text)).toEqual(['Q3 plan', 'draft attached'])
    const outsider = await registerAgent(s)
    expect((await api(s, 'GET', `/v1/conversations/${conv}/threads`, { key: outsider.apiKey })).status).toBe(404)
    expect((await api(s, 'GET', `/v1/conversations/${conv}/threads/thr_BBBBBBBBBBBBBBBB`, { key: a.apiKey })).json.code).toBe('THREAD_NOT_FOUND')
    // In a group too.
    const { group } = await a.client.createGroup({ name: 'threads' })
    const g1 = await a.client.sendMessage({ conversation_id: group.id, content: { text: 'kickoff' }, metadata: { thread_subject: 'Kickoff' } })
    const gid = (g1.message.metadata as any).thread_id
    expect((await a.client.sendMessage({ conversation_id: group.id, content: { text: 'more' }, metadata: { thread_id: gid } })).message.seq).toBeGreaterThan(0)
    expect((await rejection(a.client.sendMessage({ conversation_id: group.id, content: { text: 'x' }, metadata: { thread_id: tid } }))).code).toBe('THREAD_NOT_FOUND')
  })

  test('sender_name: the display name (else the handle) in REST, sync, socket frames and webhooks', async () => {
    const a = await registerAgent(s, undefined, { display_name: 'Ada Agent' })
    const b = await registerAgent(s)
    await b.client.createWebhook({ url: `${rx.base}/ok/sn-${backend}-${b.handle}`, events: ['message.new'] as never })
    const ws = await new WsProbe(s.url).hello(b.apiKey)
    const sent = await a.client.sendMessage({ to: b.handle, content: { text: 'named' } })
    expect((sent.message as any).sender_name).toBe('Ada Agent')
    await ws.until(() => ws.ofType('message.new').length === 1, 'frame')
    expect(ws.ofType('message.new')[0]!.payload.sender_name).toBe('Ada Agent')
    expect(((await b.client.sync()) as any[])[0].sender_name).toBe('Ada Agent')
    const hist = (await api(s, 'GET', `/v1/messages/${sent.message.conversation_id}`, { key: b.apiKey })).json
    expect(hist.messages?.[0]?.sender_name ?? hist[0]?.sender_name).toBe('Ada Agent')
    const hook = await rx.wait(`/ok/sn-${backend}-${b.handle}`, 1)
    expect(JSON.parse(hook[0]!.body).data.sender_name).toBe('Ada Agent')
    const reply = await b.client.sendMessage({ to: a.handle, content: { text: 'plain' } })
    expect((reply.message as any).sender_name).toBe(b.handle)
    ws.close()
  })

  test('x-api-key authenticates every route and the WebSocket; Authorization wins when both are sent', async () => {
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    const me = await api(s, 'GET', '/v1/agents/me', { headers: { 'x-api-key': a.apiKey } })
    expect(me.json.handle).toBe(a.handle)
    const sent = await api(s, 'POST', '/v1/messages', { headers: { 'x-api-key': a.apiKey }, body: { to: b.handle, client_msg_id: 'xk', content: { text: 'via x-api-key' } } })
    expect(sent.status).toBe(201)
    expect((await api(s, 'GET', '/v1/agents/me', { headers: { 'x-api-key': 'ac_wrong' } })).status).toBe(401)
    const both = await api(s, 'GET', '/v1/agents/me', { headers: { 'x-api-key': a.apiKey, authorization: `Bearer ${b.apiKey}` } })
    expect(both.json.handle).toBe(b.handle)
    const ws = new WsProbe(s.url, { headers: { 'x-api-key': b.apiKey } })
    await ws.until(() => ws.frames.some((f) => f.type === 'hello.ok'), 'hello.ok by header')
    await ws.until(() => ws.ofType('message.new').length === 1, 'the drained message')
    ws.close()
  })
})

describe.each(await backends())('rate headers, strict bodies and quotas on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend, { STRICT_BODIES: '1', QUOTA_MESSAGES_PER_DAY: '3', QUOTA_AGENTS_PER_OWNER: '1', API_RATE_LIMIT_PER_MIN: '40' })
  })
  afterAll(async () => {
    await s?.stop()
  })

  test('X-RateLimit-*: 60/s on sends (Remaining counts down, 429 at the end with Reset = Retry-After), the API budget elsewhere, none without auth', async () => {
    const a = await registerAgent(s)
    const anon = await api(s, 'GET', '/v1/agents/chatfather')
    expect(anon.headers.get('x-ratelimit-limit')).toBeNull()
    const me = await api(s, 'GET', '/v1/agents/me', { key: a.apiKey })
    expect(me.headers.get('x-ratelimit-limit')).toBe('40')
    const r1 = Number(me.headers.get('x-ratelimit-remaining'))
    const me2 = await api(s, 'GET', '/v1/agents/me', { key: a.apiKey })
    expect(Number(me2.headers.get('x-ratelimit-remaining'))).toBe(r1 - 1)
    expect(Number(me2.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000))
    // Spend the budget: the 429 says when, in both headers.
    let last = me2
    for (let i = 0; i < 60 && last.status !== 429; i++) last = await api(s, 'GET', '/v1/agents/me', { key: a.apiKey })
    expect(last.status).toBe(429)
    expect(last.json.code).toBe('RATE_LIMITED')
    expect(last.headers.get('x-ratelimit-remaining')).toBe('0')
    const reset = Number(last.headers.get('x-ratelimit-reset'))
    const retry = Number(last.headers.get('retry-after'))
    expect(Math.abs(reset - Math.ceil(Date.now() / 1000) - retry)).toBeLessThanOrEqual(1)
    // Sends have their own window (60/s), whatever the budget says.
    const b = await registerAgent(s)
    const sent = await api(s, 'POST', '/v1/messages', { key: b.apiKey, body: { to: a.handle, client_msg_id: 'rl-1', content: { text: 'x' } } })
    expect(sent.status).toBe(201)
    expect(sent.headers.get('x-ratelimit-limit')).toBe('60')
    expect(Number(sent.headers.get('x-ratelimit-remaining'))).toBeLessThanOrEqual(59)
    expect(Number(sent.headers.get('x-ratelimit-reset'))).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 1)
  })

  test('STRICT_BODIES=1: unknown properties are named in a 400; known ones pass', async () => {
    const a = await registerAgent(s)
    const c = await registerAgent(s)
    const bad = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: c.handle, client_msg_id: 'st-0', urgent: true, content: { text: 'x', colour: 'blue' } } })
    expect(bad.status).toBe(400)
    expect(bad.json.code).toBe('VALIDATION_ERROR')
    expect(bad.json.details.unknown_properties.sort()).toEqual(['content.colour', 'urgent'])
    const patch = await api(s, 'PATCH', `/v1/agents/${a.handle}`, { key: a.apiKey, body: { display_name: 'Ok', colour: 'blue' } })
    expect(patch.json.details.unknown_properties).toEqual(['colour'])
    const good = await api(s, 'PATCH', `/v1/agents/${a.handle}`, { key: a.apiKey, body: { display_name: 'Ok' } })
    expect(good.status).toBe(200)
    // Free-form places (metadata, content.data) stay free-form.
    const b = await registerAgent(s)
    const sent = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, client_msg_id: 'st-1', content: { text: 'x', data: { any: 1 } }, metadata: { whatever: true } } })
    expect(sent.status).toBe(201)
  })

  test('quotas: messages per day and agents per owner → 403 LIMIT_REACHED with details (429 stays for rate limits)', async () => {
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    await a.client.sendMessage({ to: b.handle, content: { text: '1' } })
    await b.client.sendMessage({ to: a.handle, content: { text: 'r' } })
    await a.client.sendMessage({ to: b.handle, content: { text: '2' } })
    await a.client.sendMessage({ to: b.handle, content: { text: '3' } })
    const over = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, client_msg_id: 'q-4', content: { text: '4' } } })
    expect(over.status).toBe(403)
    expect(over.json.code).toBe('LIMIT_REACHED')
    expect(over.json.details).toMatchObject({ quota: 'messages_per_day', limit: 3, used: 3 })
    expect(Date.parse(over.json.details.resets_at)).toBeGreaterThan(Date.now())
    const o = new OwnerClient(s, `quota-${Date.now().toString(36)}@example.test`)
    await o.signIn()
    expect((await o.claim(a.apiKey)).status).toBe(201)
    expect((await o.claim(a.apiKey)).status).toBe(201) // the same agent again is not a second one
    const second = await o.claim(b.apiKey)
    expect(second.status).toBe(403)
    expect(second.json).toMatchObject({ code: 'LIMIT_REACHED', details: { quota: 'agents_per_owner', limit: 1, used: 1 } })
  })
})
