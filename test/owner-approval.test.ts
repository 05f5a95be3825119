import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import postgres from 'postgres'
import { api, backends, registerAgent, rejection, startTestServer, WsProbe, type Registered, type TestServer } from './harness.ts'
import { OwnerClient } from './owner-client.ts'
import { startReceiver } from './webhook-receiver.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * Approval before send (issue 16.6) on every backend: the SENDER's owner holds its agent's
 * outgoing messages (`all`, or `cold` = first contact only), lists them, approves (written now,
 * through every limit again) or rejects (never written); the sender hears the outcome as a
 * WebSocket frame and a webhook; scoping, CSRF, idempotency and concurrent decisions.
 */

let n = 0
const ownerEmail = () => `apr-owner-${Date.now().toString(36)}${(n++).toString(36)}@example.test`

async function deadlocks(url: string): Promise<number> {
  const c = postgres(url, { max: 1, onnotice: () => {} })
  try {
    await Bun.sleep(1500) // backends flush their statistics about once a second
    await c`select pg_stat_clear_snapshot()`
    const [r] = await c`select deadlocks from pg_stat_database where datname = current_database()`
    return Number(r?.deadlocks ?? 0)
  } finally {
    await c.end()
  }
}

describe.each(await backends())('approval before send on %s', (backend) => {
  let s: TestServer
  let rx: Awaited<ReturnType<typeof startReceiver>>
  let deadlocksBefore = 0
  beforeAll(async () => {
    rx = await startReceiver()
    s = await startTestServer(backend, { WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_POLL_MS: '50' })
    if (s.databaseUrl) deadlocksBefore = await deadlocks(s.databaseUrl)
  })
  afterAll(async () => {
    await s?.stop()
    rx?.stop()
  })

  /** An owner signed in, with `agent` claimed and its approval mode set. */
  async function ownerOf(agent: Registered, mode: 'all' | 'cold' | 'none') {
    const o = new OwnerClient(s, ownerEmail())
    await o.signIn()
    expect((await o.claim(agent.apiKey)).status).toBe(201)
    const set = await o.call('POST', `/dashboard/agents/${agent.handle}/approval`, { mode })
    expect(set.status).toBe(200)
    expect(set.json).toEqual({ handle: agent.handle, approval_mode: mode })
    return o
  }

  const sendRaw = (from: Registered, body: Record<string, unknown>) => api(s, 'POST', '/v1/messages', { key: from.apiKey, body })
  const texts = async (who: Registered) => ((await who.client.sync()) as any[]).filter((r) => r.type !== 'system').map((r) => r.content?.text)

  test('mode all: held (202, SDK does not throw), invisible to the recipient, listed, approved → delivered; the sender gets message.approved (frame + webhook)', async () => {
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    const o = await ownerOf(a, 'all')
    expect((await o.call('GET', `/dashboard/agents/${a.handle}`)).json.approval_mode).toBe('all')
    await a.client.createWebhook({ url: `${rx.base}/ok/oa-${backend}-${a.handle}`, events: ['message.approved', 'message.rejected'] as never })
    const aws = await new WsProbe(s.url).hello(a.apiKey)
    const bws = await new WsProbe(s.url).hello(b.apiKey)

    // Through the official SDK: a 202 is a resolved send whose body says it waits.
    const viaSdk = await a.client.sendMessage({ to: b.handle, content: { text: 'first, via the SDK' } })
    expect((viaSdk.message as any).status).toBe('pending_approval')
    expect((viaSdk.message as any).approval_id).toMatch(/^apr_/)

    const held = await sendRaw(a, { to: b.handle, client_msg_id: 'oa-1', content: { text: 'needs my owner' } })
    expect(held.status).toBe(202)
    expect(held.json).toEqual({ status: 'pending_approval', approval_id: expect.stringMatching(/^apr_/) })
    // Retried: the same approval, not a second one.
    const retry = await sendRaw(a, { to: b.handle, client_msg_id: 'oa-1', content: { text: 'needs my owner' } })
    expect(retry.status).toBe(202)
    expect(retry.json.approval_id).toBe(held.json.approval_id)

    // The recipient sees nothing: no conversation, empty sync, no frame.
    await Bun.sleep(200)
    expect(await texts(b)).toEqual([])
    expect(bws.ofType('message.new')).toEqual([])
    expect((await api(s, 'GET', '/v1/conversations', { key: b.apiKey })).json.conversations ?? []).toEqual([])
    // The recipient cannot decide it (it is not a contract hold), nor can the sender itself.
    expect((await api(s, 'GET', '/v1/approvals', { key: b.apiKey })).json.approvals).toEqual([])
    expect((await api(s, 'POST', `/v1/approvals/${held.json.approval_id}/approve`, { key: b.apiKey })).status).toBe(404)
    expect((await api(s, 'POST', `/v1/approvals/${held.json.approval_id}/approve`, { key: a.apiKey })).status).toBe(404)

    const list = await o.call('GET', `/dashboard/agents/${a.handle}/approvals`)
    expect(list.status).toBe(200)
    expect(list.json.approvals.map((x: any) => [x.kind, x.to, x.content.text, x.status])).toEqual([
      ['outgoing', b.handle, 'first, via the SDK', 'pending'],
      ['outgoing', b.handle, 'needs my owner', 'pending'],
    ])

    const ok = await o.call('POST', `/dashboard/agents/${a.handle}/approvals/${held.json.approval_id}/approve`)
    expect(ok.status).toBe(200)
    expect(ok.json.approval.status).toBe('approved')
    expect(ok.json.message.content.text).toBe('needs my owner')
    const messageId = ok.json.approval.message_id
    expect(messageId).toBe(ok.json.message.id)
    await bws.until(() => bws.ofType('message.new').some((f) => f.payload.id === messageId), 'message.new at the recipient')
    expect(await texts(b)).toEqual(['needs my owner'])
    await aws.until(() => aws.ofType('message.approved').some((f) => f.payload.approval_id === held.json.approval_id), 'message.approved frame')
    const frame = aws.ofType('message.approved').find((f) => f.payload.approval_id === held.json.approval_id)!
    expect(frame.payload).toMatchObject({ kind: 'outgoing', message_id: messageId, recipient_handle: b.handle, client_msg_id: 'oa-1' })
    expect(frame.payload.message.content.text).toBe('needs my owner')
    // Decided: a second decision is refused, a retried send tells the outcome, the list moved on.
    expect((await o.call('POST', `/dashboard/agents/${a.handle}/approvals/${held.json.approval_id}/reject`)).status).toBe(409)
    const after = await sendRaw(a, { to: b.handle, client_msg_id: 'oa-1', content: { text: 'needs my owner' } })
    expect(after.json).toMatchObject({ status: 'approved', approval_id: held.json.approval_id, message_id: messageId })
    expect((await o.call('GET', `/dashboard/agents/${a.handle}/approvals`)).json.approvals.map((x: any) => x.id)).toEqual([(viaSdk.message as any).approval_id])

    const hooks = await rx.wait(`/ok/oa-${backend}-${a.handle}`, 1)
    const data = JSON.parse(hooks.find((h) => h.event === 'message.approved')!.body).data
    expect(data).toMatchObject({ approval_id: held.json.approval_id, kind: 'outgoing', message_id: messageId })
    // The timeline has the hold and the approval.
    const actions = (await o.call('GET', `/dashboard/agents/${a.handle}/events`)).json.events.map((e: any) => e.action)
    expect(actions).toContain('message.approval_requested')
    expect(actions).toContain('message.approved')
    expect(actions).toContain('agent.approval_mode_changed')
    aws.close()
    bws.close()
  })

  test('reject: never written, never delivered; the sender gets message.rejected', async () => {
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    const o = await ownerOf(a, 'all')
    const aws = await new WsProbe(s.url).hello(a.apiKey)
    const held = await sendRaw(a, { to: b.handle, client_msg_id: 'rj-1', content: { text: 'do not send this' } })
    expect(held.status).toBe(202)
    const no = await o.call('POST', `/dashboard/agents/${a.handle}/approvals/${held.json.approval_id}/reject`)
    expect(no.status).toBe(200)
    expect(no.json.approval.status).toBe('rejected')
    await aws.until(() => aws.ofType('message.rejected').some((f) => f.payload.approval_id === held.json.approval_id), 'message.rejected frame')
    expect(aws.ofType('message.rejected')[0]!.payload).toMatchObject({ kind: 'outgoing', recipient_handle: b.handle, client_msg_id: 'rj-1', reason: 'rejected' })
    expect((await o.call('POST', `/dashboard/agents/${a.handle}/approvals/${held.json.approval_id}/approve`)).json.code).toBe('ALREADY_DECIDED')
    expect(await texts(b)).toEqual([])
    const rows = await s.admin.sql<{ n: number }>(sqlCount(a, 'rj-1'))
    expect(Number(rows[0]!.n)).toBe(0)
    // A retry learns it was rejected; it is not held again.
    expect((await sendRaw(a, { to: b.handle, client_msg_id: 'rj-1', content: { text: 'do not send this' } })).json).toMatchObject({ status: 'rejected' })
    aws.close()
  })

  test('mode cold: an existing conversation goes straight through; a first contact is held; a second first contact to the same agent is refused at approval (AWAITING_REPLY)', async () => {
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    const c = await registerAgent(s)
    await a.client.sendMessage({ to: b.handle, content: { text: 'hi b' } })
    await b.client.sendMessage({ to: a.handle, content: { text: 'hi a' } })
    const o = await ownerOf(a, 'cold')
    const known = await sendRaw(a, { to: b.handle, client_msg_id: 'cold-known', content: { text: 'we know each other' } })
    expect(known.status).toBe(201)
    const first = await sendRaw(a, { to: c.handle, client_msg_id: 'cold-1', content: { text: 'hello stranger' } })
    expect(first.status).toBe(202)
    const second = await sendRaw(a, { to: c.handle, client_msg_id: 'cold-2', content: { text: 'hello again' } })
    expect(second.status).toBe(202)
    expect(await texts(c)).toEqual([])
    expect((await o.call('POST', `/dashboard/agents/${a.handle}/approvals/${first.json.approval_id}/approve`)).status).toBe(200)
    expect(await texts(c)).toEqual(['hello stranger'])
    // The second was held while no conversation existed; at approval the cold rule applies again.
    const refused = await o.call('POST', `/dashboard/agents/${a.handle}/approvals/${second.json.approval_id}/approve`)
    expect(refused.status).toBe(403)
    expect(refused.json.code).toBe('AWAITING_REPLY')
    expect(refused.json.details.recipient_handle).toBe(c.handle)
    // Still decidable: after c replies, approving it again sends it.
    expect((await o.call('GET', `/dashboard/agents/${a.handle}/approvals`)).json.approvals.map((x: any) => x.id)).toEqual([second.json.approval_id])
    await c.client.sendMessage({ to: a.handle, content: { text: 'hi there' } })
    expect((await o.call('POST', `/dashboard/agents/${a.handle}/approvals/${second.json.approval_id}/approve`)).status).toBe(200)
    expect(await texts(c)).toEqual(['hello stranger', 'hello again'])
    // And a reply into a conversation the other side opened is not a first contact.
    const d = await registerAgent(s)
    await d.client.sendMessage({ to: a.handle, content: { text: 'hi a, from d' } })
    expect((await sendRaw(a, { to: d.handle, client_msg_id: 'cold-reply', content: { text: 'hi d' } })).status).toBe(201)
  })

  test('limits again at approval: the recipient blocked the sender meanwhile → 403 BLOCKED, nothing written, still pending', async () => {
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    const o = await ownerOf(a, 'all')
    const held = await sendRaw(a, { to: b.handle, client_msg_id: 'blk-1', content: { text: 'you will block me' } })
    expect(held.status).toBe(202)
    expect((await api(s, 'POST', `/v1/contacts/${a.handle}/block`, { key: b.apiKey })).status).toBeLessThan(300)
    const refused = await o.call('POST', `/dashboard/agents/${a.handle}/approvals/${held.json.approval_id}/approve`)
    expect(refused.status).toBe(403)
    expect(refused.json.code).toBe('BLOCKED')
    expect(Number((await s.admin.sql<{ n: number }>(sqlCount(a, 'blk-1')))[0]!.n)).toBe(0)
    expect((await o.call('GET', `/dashboard/agents/${a.handle}/approvals`)).json.approvals.map((x: any) => [x.id, x.status])).toEqual([[held.json.approval_id, 'pending']])
    // Validation and the checks that do not depend on time happen at hold time.
    expect((await sendRaw(a, { to: b.handle, client_msg_id: 'blk-2', content: { text: 'again' } })).json.code).toBe('BLOCKED')
    expect((await sendRaw(a, { to: 'nobody-here-at-all', client_msg_id: 'blk-3', content: { text: 'x' } })).status).toBe(404)
    expect((await sendRaw(a, { to: b.handle, client_msg_id: 'blk-4', content: {} })).json.code).toBe('VALIDATION_ERROR')
    // Paused for sending: refused outright, not held.
    await o.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: 'send' })
    const c = await registerAgent(s)
    expect((await rejection(a.client.sendMessage({ to: c.handle, content: { text: 'paused' } }))).code).toBe('AGENT_PAUSED_BY_OWNER')
  })

  test('two concurrent approves (two tabs): one 200, one 409 ALREADY_DECIDED, one message', async () => {
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    await b.client.sendMessage({ to: a.handle, content: { text: 'write as much as you like' } })
    const o = await ownerOf(a, 'all')
    for (let i = 0; i < 3; i++) {
      const held = await sendRaw(a, { to: b.handle, client_msg_id: `race-${i}`, content: { text: `race ${i}` } })
      expect(held.status).toBe(202)
      const path = `/dashboard/agents/${a.handle}/approvals/${held.json.approval_id}/approve`
      const [x, y] = await Promise.all([o.call('POST', path), o.call('POST', path)])
      expect([x.status, y.status].sort()).toEqual([200, 409])
      expect([x, y].find((r) => r.status === 409)!.json.code).toBe('ALREADY_DECIDED')
      expect(Number((await s.admin.sql<{ n: number }>(sqlCount(a, `race-${i}`)))[0]!.n)).toBe(1)
    }
    // Approve against reject: exactly one acts.
    const held = await sendRaw(a, { to: b.handle, client_msg_id: 'race-x', content: { text: 'race x' } })
    const base = `/dashboard/agents/${a.handle}/approvals/${held.json.approval_id}`
    const [x, y] = await Promise.all([o.call('POST', `${base}/approve`), o.call('POST', `${base}/reject`)])
    expect([x.status, y.status].sort()).toEqual([200, 409])
    expect(Number((await s.admin.sql<{ n: number }>(sqlCount(a, 'race-x')))[0]!.n)).toBe(x.status === 200 ? 1 : 0)
    const got = await texts(b)
    expect(got.filter((t) => t?.startsWith('race ')).length).toBe(3 + (x.status === 200 ? 1 : 0))
  })

  test('group sends are held in mode all (never "cold"); approved → written to the group', async () => {
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    const g = await api(s, 'POST', '/v1/groups', { key: a.apiKey, body: { name: 'approvals', member_handles: [b.handle] } })
    expect(g.status).toBe(201)
    const gid: string = g.json.group.id
    const invites = (await api(s, 'GET', '/v1/groups/invites', { key: b.apiKey })).json
    expect((await api(s, 'POST', `/v1/groups/invites/${invites[0].id}/accept`, { key: b.apiKey })).status).toBe(200)
    const o = await ownerOf(a, 'cold')
    const coldGroup = await sendRaw(a, { conversation_id: gid, client_msg_id: 'grp-cold', content: { text: 'cold does not hold groups' } })
    expect([coldGroup.status, coldGroup.text]).toEqual([201, coldGroup.text])
    await o.call('POST', `/dashboard/agents/${a.handle}/approval`, { mode: 'all' })
    const held = await sendRaw(a, { conversation_id: gid, client_msg_id: 'grp-1', content: { text: 'to the group, approved' } })
    expect(held.status).toBe(202)
    const listed = (await o.call('GET', `/dashboard/agents/${a.handle}/approvals`)).json.approvals
    expect(listed.map((x: any) => [x.kind, x.conversation_id])).toEqual([['outgoing', gid]])
    expect(await texts(b)).toEqual(['cold does not hold groups'])
    const ok = await o.call('POST', `/dashboard/agents/${a.handle}/approvals/${held.json.approval_id}/approve`)
    expect(ok.status).toBe(200)
    expect(ok.json.message.conversation_id).toBe(gid)
    expect(await texts(b)).toEqual(['cold does not hold groups', 'to the group, approved'])
    // Not a member: refused at hold time.
    const c = await registerAgent(s)
    await ownerOf(c, 'all')
    expect((await sendRaw(c, { conversation_id: gid, client_msg_id: 'grp-x', content: { text: 'x' } })).status).toBe(404)
  })

  test('another owner gets 404 on every route; CSRF refuses the POST routes; releasing the claim clears the mode and rejects what waits', async () => {
    const a = await registerAgent(s)
    const b = await registerAgent(s)
    const o = await ownerOf(a, 'all')
    const held = await sendRaw(a, { to: b.handle, client_msg_id: 'scope-1', content: { text: 'mine' } })
    const other = new OwnerClient(s, ownerEmail())
    await other.signIn()
    const base = `/dashboard/agents/${a.handle}`
    for (const [method, path, body] of [
      ['POST', `${base}/approval`, { mode: 'none' }],
      ['GET', `${base}/approvals`, undefined],
      ['POST', `${base}/approvals/${held.json.approval_id}/approve`, undefined],
      ['POST', `${base}/approvals/${held.json.approval_id}/reject`, undefined],
    ] as const) {
      const r = await other.call(method, path, body)
      expect([path, r.status]).toEqual([path, 404])
    }
    // An approval id of another agent under my agent's handle: 404 too.
    const c = await registerAgent(s)
    const oc = await ownerOf(c, 'all')
    const heldC = await sendRaw(c, { to: b.handle, client_msg_id: 'scope-c', content: { text: 'c' } })
    expect((await oc.call('POST', `/dashboard/agents/${c.handle}/approvals/${held.json.approval_id}/approve`)).json.code).toBe('APPROVAL_NOT_FOUND')
    expect((await o.call('POST', `${base}/approvals/${heldC.json.approval_id}/reject`)).json.code).toBe('APPROVAL_NOT_FOUND')
    // CSRF: a foreign Origin is refused before anything is read or written.
    const evil = { origin: 'https://evil.example' }
    for (const path of [`${base}/approval`, `${base}/approvals/${held.json.approval_id}/approve`, `${base}/approvals/${held.json.approval_id}/reject`]) {
      const r = await o.call('POST', path, path.endsWith('/approval') ? { mode: 'none' } : undefined, evil)
      expect([path, r.status, r.json.code]).toEqual([path, 403, 'FORBIDDEN'])
    }
    expect((await o.call('GET', `${base}/approvals`)).json.approvals.map((x: any) => x.status)).toEqual(['pending'])
    expect((await o.call('GET', base)).json.approval_mode).toBe('all')
    // Bad mode.
    expect((await o.call('POST', `${base}/approval`, { mode: 'sometimes' })).status).toBe(400)
    // Release: the mode goes, the held send is rejected (the sender is told), sends flow again.
    const aws = await new WsProbe(s.url).hello(a.apiKey)
    expect((await o.call('DELETE', base)).status).toBe(200)
    await aws.until(() => aws.ofType('message.rejected').some((f) => f.payload.approval_id === held.json.approval_id), 'message.rejected on release')
    expect(aws.ofType('message.rejected')[0]!.payload.reason).toBe('claim_released')
    expect((await sendRaw(a, { to: b.handle, client_msg_id: 'scope-2', content: { text: 'free again' } })).status).toBe(201)
    expect((await o.claim(a.apiKey)).json.approval_mode).toBe('none')
    expect(await texts(b)).toEqual(['free again'])
    aws.close()
  })

  test('no deadlocks', async () => {
    if (!s.databaseUrl) return
    expect(await deadlocks(s.databaseUrl)).toBe(deadlocksBefore)
  })
})

function sqlCount(a: Registered, clientMsgId: string) {
  return sql`SELECT count(*)::int AS n FROM messages m JOIN agents g ON g.id = m.sender_id WHERE g.handle = ${a.handle} AND m.client_msg_id = ${clientMsgId}`
}
