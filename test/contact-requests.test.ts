import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { verifyWebhook } from 'agentchatme'
import { api, backends, registerAgent, rejection, startTestServer, WsProbe, type Registered, type TestServer } from './harness.ts'
import { startReceiver } from './webhook-receiver.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * Consent contact requests (Thenvoi, seed 004) on every backend: every route and error, approval
 * making both contacts in one step, the `contact.request.received` / `.approved` frames and
 * webhooks (verified with the SDK), a `contacts_only` inbox reachable by request and then by
 * message, 30-day expiry, and 10 concurrent duplicates yielding one 201.
 */

describe.each(await backends())('contact requests on %s', (backend) => {
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

  const request = (from: Registered, handle: string, message?: string) =>
    api(s, 'POST', '/v1/contacts/requests', { key: from.apiKey, body: message === undefined ? { handle } : { handle, message } })
  const act = (who: Registered, id: string, action: 'approve' | 'reject' | 'cancel') => api(s, 'POST', `/v1/contacts/requests/${id}/${action}`, { key: who.apiKey })
  const list = (who: Registered, side: 'received' | 'sent', q = '') => api(s, 'GET', `/v1/contacts/requests/${side}${q}`, { key: who.apiKey })

  test('create: 201 with the request; listed received (recipient) and sent (sender), newest first, paged; nobody else sees it', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const r = await request(a, `@${b.handle.toUpperCase()}`, 'we met in #general')
    expect(r.status).toBe(201)
    expect(r.json).toMatchObject({ from: a.handle, to: b.handle, message: 'we met in #general', status: 'pending', resolved_at: null })
    expect(r.json.id).toMatch(/^creq_/)
    const created = Date.parse(r.json.created_at)
    expect(Date.parse(r.json.expires_at) - created).toBe(30 * 86_400_000)
    expect(Math.abs(created - Date.now())).toBeLessThan(60_000)
    expect(Object.keys(r.json).sort()).toEqual(['created_at', 'expires_at', 'from', 'id', 'message', 'resolved_at', 'status', 'to'])

    const received = await list(b, 'received')
    expect(received.status).toBe(200)
    expect(received.json).toEqual({ requests: [r.json], total: 1, limit: 50, offset: 0 })
    expect((await list(a, 'sent')).json.requests).toEqual([r.json])
    expect((await list(a, 'received')).json).toEqual({ requests: [], total: 0, limit: 50, offset: 0 })
    expect((await list(c, 'received')).json.total).toBe(0)
    expect((await list(c, 'sent')).json.total).toBe(0)

    // Paging: c asks too, then a second page of one.
    const second = await api(s, 'POST', '/v1/contacts/requests', { key: c.apiKey, body: { handle: b.handle, message: null } })
    expect([second.status, second.json.message]).toEqual([201, null])
    const page1 = await list(b, 'received', '?limit=1')
    expect(page1.json).toMatchObject({ total: 2, limit: 1, offset: 0 })
    expect(page1.json.requests.map((x: any) => x.id)).toEqual([second.json.id]) // newest first
    expect((await list(b, 'received', '?limit=1&offset=1')).json.requests.map((x: any) => x.id)).toEqual([r.json.id])
    expect((await list(b, 'received', '?offset=99999999999999')).json).toMatchObject({ requests: [], total: 2 })
    expect((await list(b, 'received', '?limit=abc')).status).toBe(400)
    expect((await api(s, 'GET', '/v1/contacts/requests/received')).status).toBe(401)
  })

  test('create refusals: self 400, unknown 404, a second pending request 409, message > 1,000 400, blocked either way 403, mutual contacts 409', async () => {
    const [a, b, c, d] = [await registerAgent(s), await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const self = await request(a, a.handle)
    expect([self.status, self.json.code]).toEqual([400, 'VALIDATION_ERROR'])
    const unknown = await request(a, 'nobody-at-all-here')
    expect([unknown.status, unknown.json.code]).toEqual([404, 'AGENT_NOT_FOUND'])
    expect((await request(a, b.handle, 'x'.repeat(1001))).status).toBe(400)
    expect((await request(a, b.handle, 'x'.repeat(1000))).status).toBe(201)
    const dup = await request(a, b.handle)
    expect([dup.status, dup.json.code]).toEqual([409, 'CONTACT_REQUEST_EXISTS'])
    // The other direction is a request of its own.
    expect((await request(b, a.handle)).status).toBe(201)
    expect((await api(s, 'POST', '/v1/contacts/requests', { key: a.apiKey, body: {} })).status).toBe(400)

    await c.client.blockAgent(a.handle)
    for (const [from, to] of [[a, c], [c, a]] as const) {
      const r = await request(from, to.handle)
      expect([r.status, r.json.code]).toEqual([403, 'BLOCKED'])
    }

    // One direction in the books: a request still makes sense. Both: 409.
    await a.client.addContact(d.handle)
    expect((await request(a, d.handle)).status).toBe(201)
    await d.client.addContact(a.handle)
    const both = await request(d, a.handle)
    expect([both.status, both.json.code]).toEqual([409, 'ALREADY_CONTACTS'])
  })

  test('approve: the recipient only (others 404); both become contacts; the requester gets the frame and the signed webhook; not listed afterwards; twice is 409', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const hookA = (await api(s, 'POST', '/v1/webhooks', { key: a.apiKey, body: { url: `${rx.base}/ok/creq-a-${a.handle}`, events: ['contact.request.approved'] } })).json
    const hookB = (await api(s, 'POST', '/v1/webhooks', { key: b.apiKey, body: { url: `${rx.base}/ok/creq-b-${b.handle}`, events: ['contact.request.received'] } })).json
    expect(hookA.secret).toBeDefined()
    const wsA = await new WsProbe(s.url).hello(a.apiKey)
    const wsB = await new WsProbe(s.url).hello(b.apiKey)
    const r = (await request(a, b.handle, 'hello?')).json

    // The recipient hears of it: frame and webhook.
    await wsB.until(() => wsB.ofType('contact.request.received').length > 0, 'contact.request.received frame')
    expect(wsB.ofType('contact.request.received')[0]!.payload).toEqual(r)
    const [got] = await rx.wait(`/ok/creq-b-${b.handle}`, 1)
    expect(got!.event).toBe('contact.request.received')
    expect(((await verifyWebhook({ payload: got!.body, signature: got!.signature, secret: hookB.secret })) as any).data).toEqual(r)

    for (const [who, action] of [[a, 'approve'], [c, 'approve'], [c, 'reject'], [a, 'reject']] as const) {
      const x = await act(who, r.id, action)
      expect([x.status, x.json.code]).toEqual([404, 'CONTACT_REQUEST_NOT_FOUND'])
    }
    expect((await act(b, 'creq_doesnotexist00000', 'approve')).json.code).toBe('CONTACT_REQUEST_NOT_FOUND')
    expect((await a.client.checkContact(b.handle)).is_contact).toBe(false)

    const ok = await act(b, r.id, 'approve')
    expect(ok.status).toBe(200)
    expect(ok.json).toMatchObject({ id: r.id, from: a.handle, to: b.handle, status: 'approved' })
    const approvedAt = ok.json.resolved_at
    expect(Math.abs(Date.parse(approvedAt) - Date.now())).toBeLessThan(60_000)
    // Contacts both ways, at once (the relations caches were told).
    expect((await a.client.checkContact(b.handle)).is_contact).toBe(true)
    expect((await b.client.checkContact(a.handle)).is_contact).toBe(true)
    expect((await a.client.listContacts()).contacts.map((x) => x.handle)).toEqual([b.handle])

    await wsA.until(() => wsA.ofType('contact.request.approved').length > 0, 'contact.request.approved frame')
    expect(wsA.ofType('contact.request.approved')).toEqual([{ type: 'contact.request.approved', payload: { request_id: r.id, by_handle: b.handle, approved_at: approvedAt } }])
    expect(wsB.ofType('contact.request.approved')).toEqual([])
    const [hook] = await rx.wait(`/ok/creq-a-${a.handle}`, 1)
    expect(hook!.event).toBe('contact.request.approved')
    for (const sig of [hook!.signature, hook!.stripeSignature]) {
      const v = (await verifyWebhook({ payload: hook!.body, signature: sig, secret: hookA.secret })) as any
      expect(v.event).toBe('contact.request.approved')
      expect(v.data).toEqual({ request_id: r.id, by_handle: b.handle, approved_at: approvedAt })
    }

    expect((await list(b, 'received')).json.total).toBe(0)
    expect((await list(a, 'sent')).json.total).toBe(0)
    const again = await act(b, r.id, 'approve')
    expect([again.status, again.json.code, again.json.details]).toEqual([409, 'CONTACT_REQUEST_RESOLVED', { status: 'approved' }])
    expect((await act(a, r.id, 'cancel')).json.code).toBe('CONTACT_REQUEST_RESOLVED')
    // Now contacts both ways: a new request is 409.
    expect((await request(a, b.handle)).json.code).toBe('ALREADY_CONTACTS')
    wsA.close()
    wsB.close()
  })

  test('reject (recipient only) and cancel (sender only): no contacts, not listed; a new request may follow', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const r1 = (await request(a, b.handle)).json
    expect((await act(c, r1.id, 'reject')).status).toBe(404)
    const rej = await act(b, r1.id, 'reject')
    expect([rej.status, rej.json.status]).toEqual([200, 'rejected'])
    expect((await b.client.checkContact(a.handle)).is_contact).toBe(false)
    expect((await act(b, r1.id, 'approve')).json).toMatchObject({ code: 'CONTACT_REQUEST_RESOLVED', details: { status: 'rejected' } })
    expect((await list(b, 'received')).json.total).toBe(0)

    const r2 = (await request(a, b.handle)).json
    expect(r2.id).not.toBe(r1.id)
    for (const who of [b, c]) expect((await act(who, r2.id, 'cancel')).json.code).toBe('CONTACT_REQUEST_NOT_FOUND')
    const cancelled = await act(a, r2.id, 'cancel')
    expect([cancelled.status, cancelled.json.status]).toEqual([200, 'cancelled'])
    expect((await act(b, r2.id, 'approve')).json.code).toBe('CONTACT_REQUEST_RESOLVED')
    expect((await list(a, 'sent')).json.total).toBe(0)
    expect((await request(a, b.handle)).status).toBe(201)
  })

  test('a contacts_only inbox: a message is refused, a request reaches it, and after approval messages go through', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    await b.client.updateAgent(b.handle, { settings: { inbox_mode: 'contacts_only' } })
    const refused = await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'hi?' } }))
    expect([refused.status, refused.code]).toEqual([403, 'INBOX_RESTRICTED'])
    const r = await request(a, b.handle, 'may I write to you?')
    expect(r.status).toBe(201)
    expect((await list(b, 'received')).json.requests.map((x: any) => x.id)).toEqual([r.json.id])
    expect((await act(b, r.json.id, 'approve')).status).toBe(200)
    const sent = await a.client.sendMessage({ to: b.handle, content: { text: 'thanks!' } })
    expect(sent.message.id).toMatch(/^msg_/)
    expect((await b.client.sync()).map((m) => m.id)).toContain(sent.message.id)
  })

  test('expiry after 30 days: not listed, not approvable (410), and a fresh request to the same agent is allowed', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const r = (await request(a, b.handle)).json
    const other = (await request(b, a.handle)).json
    await s.admin.sql(sql`update contact_requests set created_at = now() - interval '31 days', expires_at = now() - interval '1 day' where id in (${r.id}, ${other.id})`)
    expect((await list(b, 'received')).json.total).toBe(0)
    expect((await list(a, 'sent')).json.total).toBe(0)
    const late = await act(b, r.id, 'approve')
    expect([late.status, late.json.code]).toEqual([410, 'CONTACT_REQUEST_EXPIRED'])
    expect(late.json.details.expired_at).toBeDefined()
    expect((await act(b, r.id, 'reject')).status).toBe(410) // and stays expired
    expect((await a.client.checkContact(b.handle)).is_contact).toBe(false)
    // The pending-but-expired other direction gives way to a new request.
    const fresh = await request(b, a.handle)
    expect(fresh.status).toBe(201)
    const rows = await s.admin.sql<{ status: string }>(sql`select status from contact_requests where id = ${other.id}`)
    expect(rows[0]!.status).toBe('expired')
  })

  test('10 concurrent requests to the same agent: exactly one 201, the others 409 CONTACT_REQUEST_EXISTS; one pending row', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => request(a, b.handle, `try ${i}`)))
    expect(rs.filter((r) => r.status === 201).length).toBe(1)
    const conflicts = rs.filter((r) => r.status === 409)
    expect(conflicts.length).toBe(9)
    for (const c of conflicts) expect(c.json.code).toBe('CONTACT_REQUEST_EXISTS')
    const rows = await s.admin.sql<{ n: number | string }>(sql`select count(*) as n from contact_requests where status = 'pending' and from_id = ${await s.admin.agentId(a.handle)}`)
    expect(Number(rows[0]!.n)).toBe(1)
    // And concurrent approvals of one request: one 200, the rest 409.
    const id = rs.find((r) => r.status === 201)!.json.id
    const approvals = await Promise.all(Array.from({ length: 5 }, () => act(b, id, 'approve')))
    expect(approvals.map((x) => x.status).sort()).toEqual([200, 409, 409, 409, 409])
  })

  test('requests are outreach: a paused agent cannot send them; 50 per 24 h per sender', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const id = await s.admin.agentId(a.handle)
    await s.admin.sql(sql`update agents set paused_by_owner = 'send' where id = ${id}`)
    await s.admin.agentChanged(a.handle)
    expect((await request(a, b.handle)).json.code).toBe('AGENT_PAUSED_BY_OWNER')
    await s.admin.sql(sql`update agents set paused_by_owner = 'none' where id = ${id}`)
    await s.admin.agentChanged(a.handle)
    expect((await request(a, b.handle)).status).toBe(201)
    // The daily cap: 50 requests (to different agents), then 429 with Retry-After.
    const cid = await s.admin.agentId(c.handle)
    await s.admin.sql(sql`insert into agents (id, handle, email) select 'agt_cap_' || g || ${cid}, 'cap-' || g || '-' || substr(md5(${cid}), 1, 8), 'cap-' || g || ${cid} || '@example.test' from generate_series(1, 51) g`)
    const handles = (await s.admin.sql<{ handle: string }>(sql`select handle from agents where id like ${'agt_cap_%' + cid} order by handle`)).map((r) => r.handle)
    const rs = []
    for (const h of handles) rs.push(await request(c, h))
    expect(rs.filter((r) => r.status === 201).length).toBe(50)
    const last = rs.at(-1)!
    expect(last.status).toBe(429)
    expect(last.json.code).toBe('RATE_LIMITED')
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0)
  })

  test('routes do not collide with /v1/contacts/:handle; "requests" is a reserved handle; odd ids are 404', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const reserved = await api(s, 'POST', '/v1/register', { body: { email: 'requests-handle@example.test', handle: 'requests' } })
    expect([reserved.status, reserved.json.code]).toEqual([400, 'INVALID_HANDLE'])
    // The existing contact routes still work beside the request routes.
    await a.client.addContact(b.handle)
    expect((await a.client.checkContact(b.handle)).is_contact).toBe(true)
    expect((await api(s, 'GET', '/v1/contacts/requests', { key: a.apiKey })).json).toEqual({ is_contact: false, added_at: null, notes: null })
    for (const id of ['%00', 'creq_' + 'x'.repeat(500), '..', '%F0%9F%98%80']) {
      const r = await api(s, 'POST', `/v1/contacts/requests/${id}/approve`, { key: a.apiKey })
      expect(r.status).toBeLessThan(500)
      expect(r.status).toBeGreaterThanOrEqual(400)
    }
    const spec = (await api(s, 'GET', '/v1/openapi.json')).json
    for (const p of ['/v1/contacts/requests', '/v1/contacts/requests/received', '/v1/contacts/requests/sent', '/v1/contacts/requests/{id}/approve', '/v1/contacts/requests/{id}/reject', '/v1/contacts/requests/{id}/cancel']) {
      expect(spec.paths[p]).toBeDefined()
    }
    expect(spec.paths['/v1/contacts/requests'].post.responses['409'].description).toContain('CONTACT_REQUEST_EXISTS')
    expect(Object.keys(spec.webhooks)).toEqual(expect.arrayContaining(['contact.request.received', 'contact.request.approved']))
  })
})
