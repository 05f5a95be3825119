import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { AgentChatClient } from 'agentchatme'
import { api, backends, registerAgent, startTestServer, WsProbe, type TestServer } from './harness.ts'
import { OwnerClient } from './owner-client.ts'
import { startReceiver } from './webhook-receiver.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * Operators end to end on every backend: announcements fanned out in batches to every agent
 * (socket, sync, webhook), the seeded system agent, and the internal ops routes of §16.4.
 */

const ADMIN_KEY = 'admin-key-for-tests-0123456789'
const OPS = 'ops-token-for-tests-0123456789'
const ENV = { ADMIN_KEY, OPS_ADMIN_TOKEN: OPS, ANNOUNCEMENT_BATCH: '2', WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_POLL_MS: '50', ACK_FLUSH_MS: '50' }

describe.each(await backends())('operators on %s', (backend) => {
  let s: TestServer
  let rx: Awaited<ReturnType<typeof startReceiver>>
  beforeAll(async () => {
    rx = await startReceiver()
    s = await startTestServer(backend, ENV)
  })
  afterAll(async () => {
    await s?.stop()
    rx?.stop()
  })

  const admin = (method: string, body?: unknown, key = ADMIN_KEY) => api(s, method, '/v1/admin/announcements', { body, headers: { 'x-admin-key': key } })
  const ops = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    api(s, method, path, { body, headers: { authorization: `Bearer ${OPS}`, ...headers } })

  async function fannedOut(id: string) {
    for (let i = 0; i < 400; i++) {
      const list = (await admin('GET')).json.announcements as any[]
      const a = list.find((x) => x.id === id)
      if (a?.fanout_done) return a
      await Bun.sleep(50)
    }
    throw new Error('announcement fan-out did not finish')
  }

  test('the system agent is seeded and its handle cannot be taken', async () => {
    const profile = await api(s, 'GET', '/v1/agents/chatfather')
    expect(profile.status).toBe(200)
    const reg = await api(s, 'POST', '/v1/register', { body: { email: 'cf@example.test', handle: 'chatfather' } })
    expect(reg.json.code).toBe('INVALID_HANDLE')
  })

  test('admin key 401 when wrong; an announcement reaches every agent by socket, sync and webhook, in batches, past the backlog cap and rate limits', async () => {
    expect((await admin('POST', { text: 'x' }, 'wrong-key-wrong-key')).status).toBe(401)
    expect((await admin('POST', { text: 'x' }, 'wrong-key-wrong-key')).json.code).toBe('OPS_AUTH_REQUIRED')
    const agents = await Promise.all(Array.from({ length: 5 }, () => registerAgent(s)))
    const [live, offline, hooked] = agents as [(typeof agents)[0], (typeof agents)[0], (typeof agents)[0]]
    const ws = await new WsProbe(s.url).hello(live.apiKey)
    await hooked.client.createWebhook({ url: `${rx.base}/ok/ann-${backend}`, events: ['message.new'] as never })
    const posted = await admin('POST', { text: 'Maintenance at 02:00 UTC', data: { window_min: 30 } })
    expect(posted.status).toBe(201)
    expect(posted.json).toMatchObject({ text: 'Maintenance at 02:00 UTC' })
    expect(posted.json.id).toMatch(/^ann_/)
    expect(typeof posted.json.created_at).toBe('string')
    const later = await registerAgent(s) // registered after: not in the audience
    const done = await fannedOut(posted.json.id)
    expect(done.delivered).toBeGreaterThanOrEqual(5)
    // Live, from the system agent.
    await ws.until(() => ws.ofType('message.new').some((f) => f.payload.sender === 'chatfather'), 'announcement frame')
    const frame = ws.ofType('message.new').find((f) => f.payload.sender === 'chatfather')!
    expect(frame.payload.content).toEqual({ text: 'Maintenance at 02:00 UTC', data: { window_min: 30 } })
    // Sync, exactly once.
    const rows = (await offline.client.sync()) as any[]
    expect(rows.filter((r) => r.sender === 'chatfather').length).toBe(1)
    // Webhook.
    const hooks = await rx.wait(`/ok/ann-${backend}`, 1)
    expect(JSON.parse(hooks[0]!.body).data.content.text).toBe('Maintenance at 02:00 UTC')
    expect((await later.client.sync()).length).toBe(0)
    // Listed, newest first.
    const second = await admin('POST', { text: 'second' })
    await fannedOut(second.json.id)
    const list = (await admin('GET')).json.announcements
    expect(list[0].id).toBe(second.json.id)
    expect(list[1].id).toBe(posted.json.id)
    // Each agent has one conversation with the system agent holding both, in order.
    const id = await s.admin.agentId(offline.handle)
    const msgs = await s.admin.sql<{ text: string }>(sql`
      select m.content->>'text' as text from messages m join conversations c on c.id = m.conversation_id
      where c.type = 'direct' and ((c.agent_a = ${id} and c.agent_b = 'agt_chatfather') or (c.agent_b = ${id} and c.agent_a = 'agt_chatfather'))
      order by m.seq`)
    expect(msgs.map((m) => m.text)).toEqual(['Maintenance at 02:00 UTC', 'second'])
    ws.close()
  })

  test('a fan-out abandoned mid-way (lease of a dead process) is resumed by this server, and nobody gets it twice', async () => {
    const agents = await Promise.all(Array.from({ length: 3 }, () => registerAgent(s)))
    const posted = await admin('POST', { text: 'resume me' })
    await fannedOut(posted.json.id)
    // As if a process wrote every batch, then died before recording any progress.
    await s.admin.sql(sql`update announcements set fanout_done_at = null, fanout_after = '', delivered = 0, lease_owner = 'dead-process', lease_until = now() - interval '1 second' where id = ${posted.json.id}`)
    const again = await fannedOut(posted.json.id)
    expect(again.delivered).toBe(0) // every write was recognised as a replay
    for (const a of agents) {
      const id = await s.admin.agentId(a.handle)
      const n = await s.admin.sql<{ n: number }>(sql`select count(*)::int as n from messages m join conversation_members mm on mm.conversation_id = m.conversation_id and mm.agent_id = ${id} where m.client_msg_id = ${'ann_' + posted.json.id}`)
      expect(Number(n[0]!.n)).toBe(1)
    }
  })

  test('an agent at the backlog cap still gets the announcement (counted, not refused)', async () => {
    const a = await registerAgent(s)
    const id = await s.admin.agentId(a.handle)
    // 10,000 stored messages from a seeded conversation, behind the server's back.
    await s.admin.sql(sql`insert into conversations (id, type, agent_a, agent_b, initiator_id, last_seq) values (${'conv_cap_' + id}, 'direct', ${'agt_zz_' + id}, ${id}, ${'agt_zz_' + id}, 10000)`)
    await s.admin.sql(sql`insert into conversation_members (conversation_id, agent_id) values (${'conv_cap_' + id}, ${id}), (${'conv_cap_' + id}, ${'agt_zz_' + id})`)
    await s.admin.sql(sql`insert into messages (id, conversation_id, seq, sender_id, client_msg_id, type, content, metadata)
      select 'msg_cap_' || g || ${id}, ${'conv_cap_' + id}, g, ${'agt_zz_' + id}, 'c' || g, 'text', '{"text":"x"}', '{}' from generate_series(1, 10000) g`)
    await s.admin.forgetBacklog(id)
    const b = await registerAgent(s)
    const refused = await api(s, 'POST', '/v1/messages', { key: b.apiKey, body: { to: a.handle, client_msg_id: 'full', content: { text: 'no room' } } })
    expect(refused.json.code).toBe('RECIPIENT_BACKLOGGED')
    expect(refused.json.details.undelivered_count).toBe(10_000)
    const posted = await admin('POST', { text: 'to everyone, even full inboxes' })
    await fannedOut(posted.json.id)
    const n = await s.admin.sql<{ n: number }>(sql`select count(*)::int as n from messages where sender_id = 'agt_chatfather' and client_msg_id = ${'ann_' + posted.json.id} and conversation_id in (select conversation_id from conversation_members where agent_id = ${id})`)
    expect(Number(n[0]!.n)).toBe(1)
    // Counted: the recipient's backlog moved from 10,000 to 10,001.
    const after = await api(s, 'POST', '/v1/messages', { key: b.apiKey, body: { to: a.handle, client_msg_id: 'full2', content: { text: 'still no room' } } })
    expect(after.json.details.undelivered_count).toBe(10_001)
  })

  test('ops routes: 401 without or with a wrong token; system key rotation; a system agent cannot be claimed; 10 rotations an hour', async () => {
    expect((await api(s, 'POST', '/internal/rotate-system-agent-key', { body: { handle: 'chatfather' } })).status).toBe(401)
    const wrong = await api(s, 'GET', '/internal/support-escalations', { headers: { authorization: 'Bearer nope-nope-nope-nope' } })
    expect(wrong.status).toBe(401)
    expect(wrong.json.code).toBe('OPS_AUTH_REQUIRED')
    const notSystem = await registerAgent(s)
    expect((await ops('POST', '/internal/rotate-system-agent-key', { handle: notSystem.handle })).json.code).toBe('NOT_A_SYSTEM_AGENT')
    expect((await ops('POST', '/internal/rotate-system-agent-key', { handle: 'nobody-here' })).status).toBe(404)
    const r = await ops('POST', '/internal/rotate-system-agent-key', { handle: 'chatfather' })
    expect(r.status).toBe(200)
    expect(r.json.handle).toBe('chatfather')
    const cf = new AgentChatClient({ apiKey: r.json.api_key, baseUrl: s.url })
    expect(((await cf.getMe()) as any).is_system).toBe(true)
    // A new key kills the old one.
    const r2 = await ops('POST', '/internal/rotate-system-agent-key', { handle: 'chatfather' })
    expect((await api(s, 'GET', '/v1/agents/me', { key: r.json.api_key })).status).toBe(401)
    const o = new OwnerClient(s, `ops-owner-${Date.now()}@example.test`)
    await o.signIn()
    const claim = await o.claim(r2.json.api_key)
    expect(claim.status).toBe(409)
    expect(claim.json.code).toBe('SYSTEM_AGENT_PROTECTED')
    // Every call counts (two refused ones above included): probing for system handles is capped too.
    for (let i = 4; i < 10; i++) expect((await ops('POST', '/internal/rotate-system-agent-key', { handle: 'chatfather' })).status).toBe(200)
    const capped = await ops('POST', '/internal/rotate-system-agent-key', { handle: 'chatfather' })
    expect(capped.status).toBe(429)
    expect(capped.headers.get('retry-after')).toBe('3600')
  })

  test('support escalations: writing to the system agent opens one case; operators list and resolve it', async () => {
    const a = await registerAgent(s)
    await a.client.sendMessage({ to: 'chatfather', content: { text: 'My webhook keeps failing, please help' } })
    const list = await ops('GET', '/internal/support-escalations?status=open&limit=200')
    const mine = list.json.escalations.find((e: any) => e.agent_handle === a.handle)
    expect(mine).toMatchObject({ status: 'open', subject: 'My webhook keeps failing, please help' })
    const noHeader = await ops('PATCH', `/internal/support-escalations/${mine.id}`, { status: 'resolved' })
    expect(noHeader.json.code).toBe('VALIDATION_ERROR')
    const done = await ops('PATCH', `/internal/support-escalations/${mine.id}`, { status: 'resolved', resolution_note: 'URL fixed' }, { 'x-ops-operator': 'alice' })
    expect(done.json.escalation).toMatchObject({ status: 'resolved', resolution_note: 'URL fixed', resolved_by: 'alice' })
    const resolved = await ops('GET', '/internal/support-escalations?status=resolved')
    expect(resolved.json.escalations.some((e: any) => e.id === mine.id)).toBe(true)
    expect((await ops('PATCH', '/internal/support-escalations/esc_nope', { status: 'open' }, { 'x-ops-operator': 'alice' })).status).toBe(404)
    expect((await ops('GET', '/internal/support-escalations?limit=500')).status).toBe(400)
  })
})

describe.each((await backends()).filter((b) => b === 'embedded'))('operators without tokens on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend)
  })
  afterAll(async () => {
    await s?.stop()
  })
  test('unset ADMIN_KEY / OPS_ADMIN_TOKEN: 503 OPS_AUTH_REQUIRED', async () => {
    const a = await api(s, 'POST', '/v1/admin/announcements', { body: { text: 'x' }, headers: { 'x-admin-key': 'anything-anything' } })
    expect(a.status).toBe(503)
    expect(a.json.code).toBe('OPS_AUTH_REQUIRED')
    const o = await api(s, 'GET', '/internal/support-escalations', { headers: { authorization: 'Bearer anything' } })
    expect(o.status).toBe(503)
    expect(o.json.code).toBe('OPS_AUTH_REQUIRED')
  })
})
