import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import sharp from 'sharp'
import { api, backends, clearOtpLog, readCode, registerAgent, rejection, startTestServer, uniqueHandle, WsProbe, type TestServer } from './harness.ts'
import { openDashboardSocket, OwnerClient } from './owner-client.ts'
import { startReceiver } from './webhook-receiver.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * Owners (contract §15, §12.7) end to end on every backend: sign-in by emailed code, cookies,
 * CSRF, refresh rotation and replay, claims, pause effects seen through the official SDK, read
 * views scoped to the owner, the audit timeline and the dashboard socket.
 */

let n = 0
const ownerEmail = () => `owner-${Date.now().toString(36)}${(n++).toString(36)}@example.test`

describe.each(await backends())('owners on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend, { ACK_FLUSH_MS: '50', WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_POLL_MS: '50' })
  })
  afterAll(async () => {
    await s?.stop()
  })

  async function owner() {
    const o = new OwnerClient(s, ownerEmail())
    await o.signIn()
    return o
  }

  test('sign-in sets http-only SameSite=Lax cookies; the session reads /me; no cookie is 401', async () => {
    const o = new OwnerClient(s, ownerEmail())
    const started = Date.now() - 5
    const r = await o.call('POST', '/dashboard/auth/otp/request', { email: o.email.toUpperCase() })
    expect(r.status).toBe(200)
    expect(r.json.pending_id).toMatch(/^dpnd_/)
    const code = await readCode(s.mailDir, o.email, started)
    const wrong = await o.call('POST', '/dashboard/auth/otp/verify', { pending_id: r.json.pending_id, code: code === '000000' ? '111111' : '000000' })
    expect(wrong.json.code).toBe('INVALID_CODE')
    const v = await o.call('POST', '/dashboard/auth/otp/verify', { pending_id: r.json.pending_id, code })
    expect(v.status).toBe(200)
    expect(v.json.owner.email).toBe(o.email)
    const set = o.lastSetCookies
    const access = set.find((c) => c.startsWith('ac_dashboard_session='))!
    const refresh = set.find((c) => c.startsWith('ac_dashboard_refresh='))!
    for (const c of [access, refresh]) {
      expect(c).toContain('HttpOnly')
      expect(c).toContain('SameSite=Lax')
      expect(c).not.toContain('Secure') // PUBLIC_URL is plain http here
    }
    expect(access).toContain('Max-Age=3600')
    expect(refresh).toContain('Max-Age=2592000')
    expect(refresh).toContain('Path=/dashboard/auth')
    // The code worked once.
    expect((await o.call('POST', '/dashboard/auth/otp/verify', { pending_id: r.json.pending_id, code })).json.code).toBe('EXPIRED')
    const me = await o.call('GET', '/dashboard/me')
    expect(me.json.owner.email).toBe(o.email)
    const anon = await api(s, 'GET', '/dashboard/me')
    expect(anon.status).toBe(401)
    expect(anon.json.code).toBe('UNAUTHORIZED')
    const forged = await api(s, 'GET', '/dashboard/agents', { headers: { cookie: 'ac_dashboard_session=as_forged' } })
    expect(forged.status).toBe(401)
    // Sessions are stored hashed: the cookie value appears nowhere in the table.
    const token = o.cookies.get('ac_dashboard_session')!
    const rows = await s.admin.sql<{ n: number }>(sql`select count(*)::int as n from owner_sessions where access_hash = ${token} or refresh_hash = ${token}`)
    expect(Number(rows[0]!.n)).toBe(0)
    const events = await s.admin.sql<{ action: string }>(sql`select e.action from audit_events e join owners o on o.id = e.owner_id where o.email = ${o.email} order by e.created_at`)
    expect(events.map((e) => e.action)).toEqual(['owner.created', 'owner.signed_in'])
  })

  test('email namespaces: an agent email cannot sign in as an owner, an owner email cannot register an agent', async () => {
    const a = await registerAgent(s)
    const r = await api(s, 'POST', '/dashboard/auth/otp/request', { body: { email: a.email } })
    expect(r.status).toBe(409)
    expect(r.json.code).toBe('EMAIL_IS_AGENT')
    const o = await owner()
    const reg = await api(s, 'POST', '/v1/register', { body: { email: o.email, handle: uniqueHandle('own') } })
    expect(reg.status).toBe(409)
    expect(reg.json.code).toBe('EMAIL_IS_OWNER')
  })

  test('CSRF: a cookie-authenticated write from a foreign Origin is refused and changes nothing', async () => {
    const o = await owner()
    const a = await registerAgent(s)
    const evil = await o.call('POST', '/dashboard/agents/claim', { api_key: a.apiKey }, { origin: 'https://evil.example' })
    expect(evil.status).toBe(403)
    expect(evil.json.code).toBe('FORBIDDEN')
    const crossSite = await fetch(`${s.url}/dashboard/agents/claim`, {
      method: 'POST',
      headers: { cookie: o.cookieHeader(), 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' },
      body: JSON.stringify({ api_key: a.apiKey }),
    })
    expect(crossSite.status).toBe(403)
    expect((await o.call('GET', '/dashboard/agents')).json.agents).toEqual([])
    // Same origin (as the request reached the server) is fine.
    expect((await o.claim(a.apiKey)).status).toBe(201)
  })

  test('refresh rotates the pair; replaying a used refresh token revokes the whole family', async () => {
    const o = await owner()
    const oldRefresh = o.cookies.get('ac_dashboard_refresh')!
    const r1 = await o.call('POST', '/dashboard/auth/refresh')
    expect(r1.status).toBe(200)
    expect(o.cookies.get('ac_dashboard_refresh')).not.toBe(oldRefresh)
    expect((await o.call('GET', '/dashboard/me')).status).toBe(200)
    // A concurrent refresh of the same token a moment later: 503, the family survives.
    const race = await api(s, 'POST', '/dashboard/auth/refresh', { headers: { cookie: `ac_dashboard_refresh=${oldRefresh}` } })
    expect(race.status).toBe(503)
    expect(race.json.code).toBe('REFRESH_UNAVAILABLE')
    expect((await o.call('GET', '/dashboard/me')).status).toBe(200)
    await Bun.sleep(2_100)
    const replay = await api(s, 'POST', '/dashboard/auth/refresh', { headers: { cookie: `ac_dashboard_refresh=${oldRefresh}` } })
    expect(replay.status).toBe(401)
    // The legitimate session (the family's newest pair) is gone too.
    expect((await o.call('GET', '/dashboard/me')).status).toBe(401)
    expect((await o.call('POST', '/dashboard/auth/refresh')).status).toBe(401)
  })

  test('claims: bad key 404, one owner per agent, the incumbent sees the attempt, probing is capped; owners never see each other\'s agents', async () => {
    const alice = await owner()
    const mallory = await owner()
    const a = await registerAgent(s)
    const bad = await alice.claim('ac_not_a_key')
    expect(bad.status).toBe(404)
    expect(bad.json.code).toBe('INVALID_API_KEY')
    const c = await alice.claim(a.apiKey)
    expect(c.status).toBe(201)
    expect(c.json).toMatchObject({ handle: a.handle, status: 'active', paused_by_owner: 'none' })
    for (const k of ['display_name', 'description', 'avatar_url', 'claimed_at', 'created_at']) expect(k in c.json).toBe(true)
    expect((await alice.claim(a.apiKey)).status).toBe(201) // idempotent for the same owner
    const taken = await mallory.claim(a.apiKey)
    expect(taken.status).toBe(409)
    expect(taken.json.code).toBe('ALREADY_CLAIMED')
    const events = await alice.call('GET', `/dashboard/agents/${a.handle}/events`)
    const attempt = events.json.events.find((e: any) => e.action === 'agent.claim_attempted')
    expect(attempt.metadata.ip).toBeTruthy()
    expect('user_agent' in attempt.metadata).toBe(true)
    for (let i = 0; i < 4; i++) expect((await mallory.claim(a.apiKey)).json.code).toBe('ALREADY_CLAIMED')
    const capped = await mallory.claim(a.apiKey)
    expect(capped.status).toBe(429)
    expect(capped.json.code).toBe('TOO_MANY_CLAIMS')
    // Mallory sees nothing of Alice's agent, on any read.
    for (const p of ['', '/conversations', '/events', '/contacts', '/blocks', '/presence', `/profiles/${a.handle}`, '/messages?conversation_id=x']) {
      const r = await mallory.call('GET', `/dashboard/agents/${a.handle}${p}`)
      expect(r.status).toBe(404)
    }
    expect((await mallory.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: 'full' })).status).toBe(404)
    expect((await mallory.call('DELETE', `/dashboard/agents/${a.handle}`)).json.code).toBe('CLAIM_NOT_FOUND')
    expect((await mallory.call('GET', '/dashboard/agents')).json.agents).toEqual([])
    const boot = await alice.call('GET', '/dashboard/bootstrap')
    expect(boot.json.owner.email).toBe(alice.email)
    expect(boot.json.agents.map((x: any) => x.handle)).toEqual([a.handle])
    expect(boot.json.agents[0].presence).toBe('offline')
    // The agent itself is never told.
    expect((await a.client.sync()).length).toBe(0)
  })

  test('pause send: every send refused with AGENT_PAUSED_BY_OWNER (SDK ForbiddenError); unpause restores it', async () => {
    const o = await owner()
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    await o.claim(a.apiKey)
    const p = await o.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: 'send' })
    expect(p.json).toEqual({ handle: a.handle, paused_by_owner: 'send' })
    const err = await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'hi' } }))
    expect(err.code).toBe('AGENT_PAUSED_BY_OWNER')
    expect(err.constructor.name).toBe('ForbiddenError')
    expect(((await a.client.getMe()) as any).paused_by_owner).toBe('send')
    // A paused-for-send agent still receives, live and by sync.
    await b.client.sendMessage({ to: a.handle, content: { text: 'to paused' } })
    expect((await a.client.sync()).length).toBe(1)
    const u = await o.call('POST', `/dashboard/agents/${a.handle}/unpause`)
    expect(u.json).toEqual({ handle: a.handle, paused_by_owner: 'none' })
    expect((await a.client.sendMessage({ to: b.handle, content: { text: 'free' } })).message.seq).toBeGreaterThan(0)
    const actions = (await o.call('GET', `/dashboard/agents/${a.handle}/events`)).json.events.map((e: any) => e.action)
    expect(actions.slice(0, 3)).toEqual(['agent.unpaused', 'agent.paused', 'agent.claimed'])
    expect(actions).toContain('agent.created')
  })

  test('pause full: no live push, sync empty, ack 0; unpause lets the held messages flow (sync and socket drain)', async () => {
    const o = await owner()
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    await o.claim(a.apiKey)
    await a.client.sendMessage({ to: b.handle, content: { text: 'open' } })
    await b.client.sendMessage({ to: a.handle, content: { text: 'reply' } })
    const first = await a.client.sync()
    await a.client.syncAck(first.at(-1)!.delivery_id!)
    expect((await o.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: 'full' })).json.paused_by_owner).toBe('full')
    const ws = await new WsProbe(s.url).hello(a.apiKey)
    const held = await b.client.sendMessage({ to: a.handle, content: { text: 'held' } })
    await Bun.sleep(400)
    expect(ws.ofType('message.new').length).toBe(0)
    expect(await a.client.sync()).toEqual([])
    const ack = await api(s, 'POST', '/v1/messages/sync/ack', { key: a.apiKey, body: { last_delivery_id: `del_${'f'.repeat(32)}` } })
    expect(ack.json).toEqual({ acked: 0 })
    expect((await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'x' } }))).code).toBe('AGENT_PAUSED_BY_OWNER')
    await o.call('POST', `/dashboard/agents/${a.handle}/unpause`)
    // The open socket is drained of what was held back, and sync has it.
    await ws.until(() => ws.ofType('message.new').some((f) => f.payload.id === held.message.id), 'held message after unpause')
    expect((await a.client.sync()).map((r: any) => r.id)).toContain(held.message.id)
    ws.close()
  })

  test('full pause on a socket: no group.invite.received, no message.read as sender, no group.deleted; each flows normally once unpaused', async () => {
    const o = await owner()
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    await o.claim(a.apiKey)
    // b reads a's message while a is fully paused: a gets no message.read.
    await a.client.sendMessage({ to: b.handle, content: { text: 'read me' } })
    const reply = await b.client.sendMessage({ to: a.handle, content: { text: 'ok' } })
    await o.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: 'full' })
    const ws = await new WsProbe(s.url).hello(a.apiKey)
    const sent = (await b.client.sync()).find((r: any) => r.content?.text === 'read me') as any
    await b.client.markAsRead(sent.id)
    const { group } = await b.client.createGroup({ name: 'Held invite', member_handles: [a.handle] })
    const { group: doomed } = await b.client.createGroup({ name: 'Doomed' })
    await Bun.sleep(500)
    expect(ws.ofType('message.read').length).toBe(0)
    expect(ws.ofType('group.invite.received').length).toBe(0)
    // Unpaused: the same kinds of event arrive live again.
    await o.call('POST', `/dashboard/agents/${a.handle}/unpause`)
    await ws.until(() => ws.ofType('message.new').some((f) => f.payload.id === reply.message.id), 'drain after unpause')
    const invite = (await a.client.listGroupInvites()).find((i: any) => i.group_id === group.id) as any
    expect(invite).toBeDefined()
    const again = await a.client.sendMessage({ to: b.handle, content: { text: 'read me too' } })
    await b.client.markAsRead(again.message.id)
    await ws.until(() => ws.ofType('message.read').length === 1, 'message.read after unpause')
    // group.deleted: a is a member (accepted), paused full while the group is deleted.
    await b.client.addGroupMember(doomed.id, a.handle)
    const inv2 = (await a.client.listGroupInvites()).find((i: any) => i.group_id === doomed.id) as any
    await ws.until(() => ws.ofType('group.invite.received').length >= 1, 'invite after unpause')
    await a.client.acceptGroupInvite(inv2.id)
    await o.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: 'full' })
    await b.client.deleteGroup(doomed.id)
    await Bun.sleep(500)
    expect(ws.ofType('group.deleted').length).toBe(0)
    ws.close()
  })

  test('contacts and a group, read through the dashboard from the agent\'s side', async () => {
    const o = await owner()
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    await o.claim(a.apiKey)
    await a.client.addContact(b.handle)
    const contacts = (await o.call('GET', `/dashboard/agents/${a.handle}/contacts`)).json.contacts
    expect(contacts.map((c: any) => c.handle)).toEqual([b.handle])
    const { group } = await a.client.createGroup({ name: 'Seen by the owner' })
    const g = await o.call('GET', `/dashboard/agents/${a.handle}/groups/${group.id}`)
    expect(g.status).toBe(200)
    expect(g.json.name).toBe('Seen by the owner')
    const { group: foreign } = await b.client.createGroup({ name: 'Not a member' })
    expect((await o.call('GET', `/dashboard/agents/${a.handle}/groups/${foreign.id}`)).status).toBe(404)
  })

  test('a session whose owner row is gone is 401 OWNER_NOT_FOUND', async () => {
    const o = await owner()
    await s.admin.sql(sql`delete from owners where email = ${o.email}`)
    const r = await o.call('GET', '/dashboard/me')
    expect(r.status).toBe(401)
    expect(r.json.code).toBe('OWNER_NOT_FOUND')
  })

  test('read views: conversations and messages from the agent\'s side; timeline pages with before=', async () => {
    const o = await owner()
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    await o.claim(a.apiKey)
    const m1 = await a.client.sendMessage({ to: b.handle, content: { text: 'one' } })
    await b.client.sendMessage({ to: a.handle, content: { text: 'two' } })
    const convs = (await o.call('GET', `/dashboard/agents/${a.handle}/conversations`)).json.conversations
    expect(convs.length).toBe(1)
    expect(convs[0]).toMatchObject({ id: m1.message.conversation_id, type: 'direct', counterpart: { handle: b.handle } })
    const msgs = (await o.call('GET', `/dashboard/agents/${a.handle}/messages?conversation_id=${m1.message.conversation_id}`)).json.messages
    expect(msgs.map((m: any) => [m.content.text, m.is_own, m.sender])).toEqual([
      ['one', true, a.handle],
      ['two', false, b.handle],
    ])
    const older = (await o.call('GET', `/dashboard/agents/${a.handle}/messages?conversation_id=${m1.message.conversation_id}&before_seq=2`)).json.messages
    expect(older.map((m: any) => m.content.text)).toEqual(['one'])
    const foreign = await o.call('GET', `/dashboard/agents/${a.handle}/messages?conversation_id=conv_nope`)
    expect(foreign.status).toBe(404)
    const presence = await o.call('GET', `/dashboard/agents/${a.handle}/presence`)
    expect(presence.json.handle).toBe(a.handle)
    const profile = await o.call('GET', `/dashboard/agents/${a.handle}/profiles/${b.handle}`)
    expect(profile.json.handle).toBe(b.handle)
    await a.client.blockAgent(b.handle)
    const blocks = (await o.call('GET', `/dashboard/agents/${a.handle}/blocks`)).json.blocks
    expect(blocks.map((x: any) => x.handle)).toEqual([b.handle])
    const events = (await o.call('GET', `/dashboard/agents/${a.handle}/events`)).json.events
    expect(events[0].action).toBe('agent.blocked')
    const before = events[0].created_at
    const page = (await o.call('GET', `/dashboard/agents/${a.handle}/events?before=${encodeURIComponent(before)}`)).json.events
    expect(page.every((e: any) => e.created_at < before)).toBe(true)
    expect((await o.call('GET', `/dashboard/agents/${a.handle}/events?before=yesterday`)).json.code).toBe('VALIDATION_ERROR')
  })

  test('key rotation revokes the claim, with both audit events', async () => {
    const o = await owner()
    const a = await registerAgent(s)
    await o.claim(a.apiKey)
    await clearOtpLog(s, a.email)
    const started = Date.now() - 5
    const { pending_id } = await a.client.rotateKey(a.handle)
    const code = await readCode(s.mailDir, a.email, started)
    await a.client.rotateKeyVerify(a.handle, pending_id, code)
    expect((await o.call('GET', '/dashboard/agents')).json.agents).toEqual([])
    expect((await o.call('GET', `/dashboard/agents/${a.handle}`)).status).toBe(404)
    const id = await s.admin.agentId(a.handle)
    const rows = await s.admin.sql<{ action: string }>(sql`select action from audit_events where agent_id = ${id} order by created_at`)
    expect(rows.map((r) => r.action)).toEqual(expect.arrayContaining(['agent.claimed', 'agent.key_rotated', 'agent.claim_revoked']))
  })

  test('sign out with only the refresh cookie left (access expired) still revokes the session', async () => {
    const o = await owner()
    const refresh = o.cookies.get('ac_dashboard_refresh')!
    o.cookies.delete('ac_dashboard_session')
    expect((await o.call('POST', '/dashboard/auth/logout')).status).toBe(200)
    const r = await api(s, 'POST', '/dashboard/auth/refresh', { headers: { cookie: `ac_dashboard_refresh=${refresh}` } })
    expect(r.status).toBe(401)
  })

  test('the timeline pages by (created_at, id): events sharing a millisecond are neither skipped nor repeated', async () => {
    const o = await owner()
    const a = await registerAgent(s)
    await o.claim(a.apiKey)
    const id = await s.admin.agentId(a.handle)
    // 120 events in one millisecond, behind the server's back.
    await s.admin.sql(sql`insert into audit_events (id, agent_id, actor_type, action, metadata, created_at)
      select 'evt_same_' || lpad(g::text, 4, '0') || ${id}, ${id}, 'system', 'agent.status_changed', '{}', '2026-01-01T00:00:00.123Z' from generate_series(1, 120) g`)
    const seen: string[] = []
    let query = ''
    for (let i = 0; i < 10; i++) {
      const page = (await o.call('GET', `/dashboard/agents/${a.handle}/events${query}`)).json.events as any[]
      seen.push(...page.map((e) => e.id))
      if (page.length < 50) break
      const last = page.at(-1)
      query = `?before=${encodeURIComponent(last.created_at)}&before_id=${encodeURIComponent(last.id)}`
    }
    expect(new Set(seen).size).toBe(seen.length)
    expect(seen.filter((e) => e.startsWith('evt_same_')).length).toBe(120)
  })

  test('release: the claim goes (and its pause); a second release is CLAIM_NOT_FOUND', async () => {
    const o = await owner()
    const a = await registerAgent(s)
    await o.claim(a.apiKey)
    await o.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: 'send' })
    expect((await o.call('DELETE', `/dashboard/agents/${a.handle}`)).json).toEqual({ message: 'Claim released' })
    expect(((await a.client.getMe()) as any).paused_by_owner).toBe('none')
    const again = await o.call('DELETE', `/dashboard/agents/${a.handle}`)
    expect(again.status).toBe(404)
    expect(again.json.code).toBe('CLAIM_NOT_FOUND')
  })

  test('dashboard socket: one-shot ticket, hello.ok, sent and received messages live (even when muted or paused), 1008 on sign-out everywhere', async () => {
    const o = await owner()
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    await o.claim(a.apiKey)
    const t = await o.call('POST', '/dashboard/ws/ticket')
    expect(t.json.expires_in).toBe(30)
    const dash = openDashboardSocket(s.url, t.json.ticket)
    await dash.until(() => dash.frames.some((f) => f.type === 'hello.ok'), 'hello.ok')
    expect(dash.frames[0]).toMatchObject({ type: 'hello.ok' })
    expect(typeof dash.frames[0].owner_id).toBe('string')
    // The ticket worked once.
    const reuse = openDashboardSocket(s.url, t.json.ticket)
    await reuse.until(() => reuse.closed !== null, 'reused ticket closed')
    expect(reuse.closed).toEqual({ code: 1008, reason: 'Invalid ticket' })
    const sent = await a.client.sendMessage({ to: b.handle, content: { text: 'out' } })
    await dash.until(() => dash.frames.some((f) => f.payload?.id === sent.message.id), 'sent message')
    const ev = dash.frames.find((f) => f.payload?.id === sent.message.id)
    expect(ev).toMatchObject({ type: 'message.new', agent_handle: a.handle, conversation_id: sent.message.conversation_id })
    expect(ev.payload).toMatchObject({ sender: a.handle, is_own: true, seq: sent.message.seq, type: 'text', content: { text: 'out' }, delivery_id: null, status: 'stored', delivered_at: null, read_at: null })
    // Received while the agent muted the sender and is fully paused: the owner still sees it.
    await a.client.muteAgent(b.handle)
    await o.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: 'full' })
    const got = await b.client.sendMessage({ to: a.handle, content: { text: 'in' } })
    await dash.until(() => dash.frames.some((f) => f.payload?.id === got.message.id), 'received message')
    expect(dash.frames.find((f) => f.payload?.id === got.message.id).payload).toMatchObject({ is_own: false, sender: b.handle })
    const out = await o.call('POST', '/dashboard/auth/logout/all')
    expect(out.json.sessions_revoked).toBe(1)
    await dash.until(() => dash.closed !== null, 'signed-out close')
    expect(dash.closed).toEqual({ code: 1008, reason: 'Signed out' })
    expect((await o.call('GET', '/dashboard/me')).status).toBe(401)
  })

  test('a fully paused agent gets no webhooks; after unpause they flow again', async () => {
    const rx = await startReceiver()
    try {
      const o = await owner()
      const a = await registerAgent(s)
      const b = await registerAgent(s)
      await o.claim(a.apiKey)
      await a.client.createWebhook({ url: `${rx.base}/ok/paused-${backend}`, events: ['message.new', 'contact.blocked'] as never })
      await a.client.sendMessage({ to: b.handle, content: { text: 'hello first' } })
      await o.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: 'full' })
      const held = await b.client.sendMessage({ to: a.handle, content: { text: 'while paused' } })
      await b.client.blockAgent(a.handle)
      await Bun.sleep(700)
      expect(rx.got.filter((r) => r.path === `/ok/paused-${backend}`)).toEqual([])
      await o.call('POST', `/dashboard/agents/${a.handle}/unpause`)
      await b.client.unblockAgent(a.handle)
      const after = await b.client.sendMessage({ to: a.handle, content: { text: 'after' } })
      const got = await rx.wait(`/ok/paused-${backend}`, 1, 10_000, (r) => r.event === 'message.new')
      expect(got.map((r) => JSON.parse(r.body).data.id)).toEqual([after.message.id])
      expect(got.some((r) => JSON.parse(r.body).data.id === held.message.id)).toBe(false)
    } finally {
      rx.stop()
    }
  })

  test('group avatar as the claimed agent: set and removed through the dashboard; another owner gets 404', async () => {
    const o = await owner()
    const other = await owner()
    const a = await registerAgent(s)
    await o.claim(a.apiKey)
    const g = ((await a.client.createGroup({ name: 'dash avatar' })) as any).group
    const png = await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 0, g: 128, b: 255 } } }).png().toBuffer()
    const put = (who: OwnerClient) =>
      fetch(`${s.url}/dashboard/agents/${a.handle}/groups/${g.id}/avatar`, { method: 'PUT', headers: { cookie: who.cookieHeader(), origin: s.url, 'content-type': 'image/png' }, body: png })
    const res = await put(o)
    expect(res.status).toBe(200)
    const body = (await res.json()) as any
    expect(body.avatar_url).toContain('/avatars/g/')
    const img = await fetch(body.avatar_url.replace(/^https?:\/\/[^/]+/, s.url))
    expect(img.headers.get('content-type')).toBe('image/webp')
    expect((await put(other)).status).toBe(404)
    expect((await o.call('DELETE', `/dashboard/agents/${a.handle}/groups/${g.id}/avatar`)).json).toEqual({ ok: true })
  })

  test('a bad ticket closes 1008 "Invalid ticket"', async () => {
    const dash = openDashboardSocket(s.url, 'not-a-ticket')
    await dash.until(() => dash.closed !== null, 'close')
    expect(dash.closed).toEqual({ code: 1008, reason: 'Invalid ticket' })
  })
})

describe.each((await backends()).filter((b) => b === 'embedded' || b === 'postgres+redis'))('owner IP limits on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend, { IP_RATE_LIMITS: 'on' })
  })
  afterAll(async () => {
    await s?.stop()
  })

  test('5 code requests per IP per hour, then 429 RATE_LIMITED with Retry-After', async () => {
    for (let i = 0; i < 5; i++) expect((await api(s, 'POST', '/dashboard/auth/otp/request', { body: { email: ownerEmail() } })).status).toBe(200)
    const sixth = await api(s, 'POST', '/dashboard/auth/otp/request', { body: { email: ownerEmail() } })
    expect(sixth.status).toBe(429)
    expect(sixth.json.code).toBe('RATE_LIMITED')
    expect(Number(sixth.headers.get('retry-after'))).toBeGreaterThan(0)
  })

  test('behind an https PUBLIC_URL the cookies are Secure, and that origin is accepted for writes', async () => {
    const s2 = await startTestServer(backend === 'embedded' ? 'embedded' : 'postgres', { PUBLIC_URL: 'https://chat.example.test' })
    try {
      const o = new OwnerClient(s2, ownerEmail())
      await o.signIn()
      expect(o.lastSetCookies.length).toBe(2)
      for (const c of o.lastSetCookies) expect(c).toContain('; Secure')
      const a = await registerAgent(s2)
      const viaProxy = await o.call('POST', '/dashboard/agents/claim', { api_key: a.apiKey }, { origin: 'https://chat.example.test' })
      expect(viaProxy.status).toBe(201)
      const foreign = await o.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: 'send' }, { origin: 'https://chat.example.test.evil.example' })
      expect(foreign.status).toBe(403)
    } finally {
      await s2.stop()
    }
  })

  test('the per-email OTP cooldown applies to owners too', async () => {
    const s2 = await startTestServer(backend === 'embedded' ? 'embedded' : 'postgres')
    try {
      const email = ownerEmail()
      expect((await api(s2, 'POST', '/dashboard/auth/otp/request', { body: { email } })).status).toBe(200)
      const again = await api(s2, 'POST', '/dashboard/auth/otp/request', { body: { email } })
      expect(again.status).toBe(429)
      expect(again.json.code).toBe('OTP_COOLDOWN')
    } finally {
      await s2.stop()
    }
  })
})
