import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { verifyWebhook } from 'agentchatme'
import { addressRule, checkTarget } from '../src/delivery/webhooks/url-guard.ts'
import { api, backends, registerAgent, rejection, startTestServer, type Registered, type TestServer } from './harness.ts'
import { startReceiver } from './webhook-receiver.ts'

// Real servers and a real receiver on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * Webhooks (contract §13) end to end: the real server on each backend posts to a real HTTP
 * receiver on 127.0.0.1; bodies and both signature headers are checked with the official SDK's
 * verifyWebhook. Schedules are shortened through configuration, never mocked.
 */

const FAST = {
  WEBHOOK_ALLOW_PRIVATE: '1',
  WEBHOOK_POLL_MS: '50',
  WEBHOOK_TIMEOUT_MS: '1000',
  WEBHOOK_RETRY_SCHEDULE_MS: '150,150,150,150,150,150,150,150',
  WEBHOOK_BREAKER_COOLDOWN_MS: '1500',
  ACK_FLUSH_MS: '50',
}

const ALL_EVENTS = ['message.new', 'message.read', 'presence.update', 'contact.blocked', 'group.invite.received', 'group.deleted'] as const

describe.each(await backends())('webhooks on %s', (backend) => {
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

  async function hook(agent: Registered, path: string, events: readonly string[] = ALL_EVENTS) {
    const w = await agent.client.createWebhook({ url: `${rx.base}${path}`, events: events as never })
    return w as typeof w & { secret: string }
  }

  async function verified(body: string, signature: string, secret: string) {
    return verifyWebhook({ payload: body, signature, secret })
  }

  /** Both signature headers verify (SDK), to the same payload; the event header names it. */
  async function both(r: { body: string; signature: string; stripeSignature: string; event: string }, secret: string) {
    const [x, y] = [await verified(r.body, r.signature, secret), await verified(r.body, r.stripeSignature, secret)]
    expect(x).toEqual(y)
    expect(x.event).toBe(r.event as never)
    return x
  }

  test('CRUD: secret once, list and get without it, 404 for others, delete, at most 5, agent.created for system agents only', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const w = await hook(a, '/ok/crud', ['message.new'])
    expect(w.id).toMatch(/^whk_/)
    expect(w.secret).toMatch(/^[0-9a-f]{64}$/)
    expect(w).toMatchObject({ url: `${rx.base}/ok/crud`, events: ['message.new'], active: true })
    const listed = await a.client.listWebhooks()
    expect(listed.webhooks.map((x) => x.id)).toEqual([w.id])
    expect(JSON.stringify(listed)).not.toContain(w.secret)
    expect(await a.client.getWebhook(w.id)).toMatchObject({ id: w.id, active: true })
    expect(JSON.stringify(await a.client.getWebhook(w.id))).not.toContain('secret')
    expect((await rejection(b.client.getWebhook(w.id))).status).toBe(404)
    expect((await rejection(b.client.deleteWebhook(w.id))).code).toBe('NOT_FOUND')
    // A client-sent secret is ignored.
    const own = await api(s, 'POST', '/v1/webhooks', { key: a.apiKey, body: { url: `${rx.base}/ok/crud2`, events: ['message.read'], secret: 'mine' } })
    expect(own.status).toBe(201)
    expect((own.json as { secret: string }).secret).not.toBe('mine')
    for (let i = 0; i < 3; i++) await hook(a, `/ok/crud-${i}`, ['message.new'])
    const sixth = await rejection(hook(a, '/ok/crud-6', ['message.new']))
    expect([sixth.status, sixth.code]).toEqual([400, 'LIMIT_REACHED'])
    await a.client.deleteWebhook(w.id)
    expect((await rejection(a.client.getWebhook(w.id))).status).toBe(404)
    expect((await a.client.listWebhooks()).webhooks).toHaveLength(4)
    await hook(a, '/ok/crud-again', ['message.new']) // a slot freed by the delete
    const sys = await rejection(hook(b, '/ok/sys', ['agent.created']))
    expect([sys.status, sys.code]).toEqual([403, 'FORBIDDEN'])
    for (const body of [{ url: `${rx.base}/x`, events: [] }, { url: `${rx.base}/x`, events: ['message.deleted'] }, { url: 'not a url', events: ['message.new'] }, { url: 'ftp://example.com/x', events: ['message.new'] }]) {
      const r = await api(s, 'POST', '/v1/webhooks', { key: b.apiKey, body })
      expect([r.status, (r.json as { code: string }).code]).toEqual([400, 'VALIDATION_ERROR'])
    }
  })

  test('the OpenAPI document lists the routes and each event as an OpenAPI webhook with its body', async () => {
    const doc = (await api(s, 'GET', '/v1/openapi.json')).json as { paths: Record<string, object>; webhooks: Record<string, { post: { requestBody: { content: { 'application/json': { schema: { properties: Record<string, unknown> } } } } } }> }
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/webhooks', '/v1/webhooks/{id}']))
    expect(Object.keys(doc.webhooks).sort()).toEqual([...ALL_EVENTS, 'contact.request.received', 'contact.request.approved', 'agent.created', 'message.approved', 'message.rejected', 'conversation.loop_detected', 'wake.digest', 'message.expired'].sort())
    const body = doc.webhooks['contact.blocked']!.post.requestBody.content['application/json'].schema
    expect(Object.keys(body.properties)).toEqual(['event', 'timestamp', 'data'])
  })

  test('every event arrives signed both ways (SDK verifyWebhook), with the contract body; message.new marks the message delivered', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const wa = await hook(a, `/ok/ev-a-${a.handle}`)
    const wb = await hook(b, `/ok/ev-b-${b.handle}`)
    const wc = await hook(c, `/ok/ev-c-${c.handle}`)
    const pa = `/ok/ev-a-${a.handle}`
    const pb = `/ok/ev-b-${b.handle}`
    const pc = `/ok/ev-c-${c.handle}`

    // message.new to the recipient only (not the sender).
    const sent = await b.client.sendMessage({ to: a.handle, content: { text: 'hello by webhook' } })
    const [mn] = await rx.wait(pa, 1, 20_000, (r) => r.event === 'message.new')
    expect(mn).toBeDefined()
    expect(mn!.delivery).toMatch(/^whd_/)
    expect(mn!.signature).toMatch(/^[0-9a-f]{64}$/)
    expect(mn!.stripeSignature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/)
    for (const sig of [mn!.signature, mn!.stripeSignature]) {
      const p = await verified(mn!.body, sig, wa.secret)
      expect(p.event).toBe('message.new')
      expect(p.data).toMatchObject({ id: sent.message.id, conversation_id: sent.message.conversation_id, content: { text: 'hello by webhook' } })
    }
    expect((await rejection(verified(mn!.body, mn!.signature, wb.secret))).message).toBeDefined()
    expect(rx.got.some((r) => r.path === pb && r.event === 'message.new')).toBe(false)
    // Webhooks count as delivery: a's cursor moves although a has no socket.
    const aId = await s.admin.agentId(a.handle)
    let delivered = 0
    for (let i = 0; i < 100 && delivered < 1; i++) {
      const rows = await s.admin.sql<{ d: number }>(sql`select delivered_seq::int as d from conversation_members where agent_id = ${aId} and conversation_id = ${sent.message.conversation_id}`)
      delivered = rows[0]?.d ?? 0
      if (delivered < 1) await Bun.sleep(50)
    }
    expect(delivered).toBe(1)

    // message.read to the sender.
    await api(s, 'POST', `/v1/messages/${sent.message.id}/read`, { key: a.apiKey })
    const [mr] = await rx.wait(pb, 1, 20_000, (r) => r.event === 'message.read')
    const read = await both(mr!, wb.secret)
    expect(read.data).toMatchObject({ message_id: sent.message.id, read_by: a.handle })

    // contact.blocked to the blocked agent, naming the blocker.
    await a.client.blockAgent(c.handle)
    const [cb] = await rx.wait(pc, 1, 20_000, (r) => r.event === 'contact.blocked')
    expect((await both(cb!, wc.secret)).data).toEqual({ blocked_by: a.handle })
    await a.client.blockAgent(c.handle) // again: nothing new
    await a.client.unblockAgent(c.handle)

    // presence.update to the agents that have the subject in their contacts.
    await a.client.addContact(b.handle)
    await b.client.updatePresence({ status: 'busy', custom_message: 'in a meeting' })
    const [pu] = await rx.wait(pa, 1, 20_000, (r) => r.event === 'presence.update' && r.body.includes('in a meeting'))
    expect((await both(pu!, wa.secret)).data).toEqual({ handle: b.handle, status: 'busy', custom_message: 'in a meeting' })

    // group.invite.received to the invitee; group.deleted to each former member.
    const { group } = await a.client.createGroup({ name: 'Hooks', member_handles: [b.handle] })
    const [gi] = await rx.wait(pb, 1, 20_000, (r) => r.event === 'group.invite.received')
    expect((await both(gi!, wb.secret)).data).toMatchObject({ group_id: group.id, inviter_handle: a.handle })
    const invite = (await b.client.listGroupInvites()).find((i) => i.group_id === group.id)!
    await b.client.acceptGroupInvite(invite.id)
    await a.client.deleteGroup(group.id)
    const [gd] = await rx.wait(pb, 1, 20_000, (r) => r.event === 'group.deleted')
    expect((await both(gd!, wb.secret)).data).toMatchObject({ group_id: group.id, deleted_by_handle: a.handle })
    // The final system message reached b as message.new too.
    const sys = await rx.wait(pb, 1, 20_000, (r) => r.event === 'message.new' && r.body.includes('group_deleted'))
    expect(sys.length).toBe(1)
    // Each delivery id arrived once on these healthy receivers.
    const ids = rx.got.filter((r) => [pa, pb, pc].includes(r.path)).map((r) => r.delivery)
    expect(new Set(ids).size).toBe(ids.length)
  })

  test('a muted sender, a fully paused recipient and a deleted webhook get nothing', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const path = `/ok/mute-${a.handle}`
    await hook(a, path, ['message.new'])
    await a.client.muteAgent(b.handle)
    await b.client.sendMessage({ to: a.handle, content: { text: 'muted' } })
    await c.client.sendMessage({ to: a.handle, content: { text: 'not muted' } })
    const got = await rx.wait(path, 1, 20_000, (r) => r.body.includes('not muted'))
    expect(got).toHaveLength(1)
    await Bun.sleep(300)
    expect(rx.got.filter((r) => r.path === path && r.body.includes('"muted"')).length).toBe(0)
    // A fully paused agent (owner pause, contract §15) gets no webhooks.
    const d = await registerAgent(s)
    await hook(d, `/ok/paused-${d.handle}`, ['message.new'])
    await s.admin.sql(sql`update agents set paused_by_owner = 'full' where handle = ${d.handle}`)
    await s.admin.agentChanged(d.handle)
    await c.client.sendMessage({ to: d.handle, content: { text: 'to a paused agent' } })
    const w2 = await hook(c, `/ok/gone-${c.handle}`, ['message.new'])
    await c.client.deleteWebhook(w2.id)
    await a.client.sendMessage({ to: c.handle, content: { text: 'after delete' } })
    await Bun.sleep(500)
    expect(rx.got.filter((r) => r.path === `/ok/gone-${c.handle}`)).toHaveLength(0)
    expect(rx.got.filter((r) => r.path === `/ok/paused-${d.handle}`)).toHaveLength(0)
  })

  test('retries: three failures then success carry one delivery id; a receiver that does not answer in time is retried; redirects are not followed', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const flaky = `/flaky/${a.handle}`
    const slow = `/slow/${b.handle}`
    await hook(a, flaky, ['message.new'])
    await hook(b, slow, ['message.new'])
    await b.client.sendMessage({ to: a.handle, content: { text: 'flaky' } })
    await a.client.sendMessage({ to: b.handle, content: { text: 'slow' } })
    const four = await rx.wait(flaky, 4)
    expect(four).toHaveLength(4)
    expect(new Set(four.map((r) => r.delivery)).size).toBe(1)
    expect(new Set(four.map((r) => r.body)).size).toBe(1) // the same signed bytes every time
    for (let i = 1; i < 4; i++) expect(four[i]!.at - four[i - 1]!.at).toBeGreaterThanOrEqual(100) // the schedule, not a spin
    // Redirects are not followed: a 302 is a failed attempt, retried on the schedule.
    const c = await registerAgent(s)
    const redirect = `/redirect/${c.handle}`
    await hook(c, redirect, ['message.new'])
    await a.client.sendMessage({ to: c.handle, content: { text: 'redirected' } })
    const hops = await rx.wait(redirect, 2)
    expect(hops.length).toBeGreaterThanOrEqual(2)
    expect(rx.got.filter((r) => r.path === `/ok/after-redirect${redirect}`)).toHaveLength(0)
    const two = await rx.wait(slow, 2)
    expect(two).toHaveLength(2)
    expect(two[0]!.delivery).toBe(two[1]!.delivery)
    await Bun.sleep(400)
    expect(rx.got.filter((r) => r.path === flaky)).toHaveLength(4) // success ends it
    const [state] = await s.admin.sql<{ state: string; attempts: number }>(sql`select state, attempts from webhook_deliveries where id = ${four[0]!.delivery}`)
    expect(state).toEqual({ state: 'delivered', attempts: 4 })
  })

  test('circuit breaker: open after 5 consecutive failures, one probe after the cooldown, closed by a success', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const down = `/down/${a.handle}`
    const w = await hook(a, down, ['message.new'])
    await b.client.sendMessage({ to: a.handle, content: { text: 'one' } })
    await c.client.sendMessage({ to: a.handle, content: { text: 'two' } })
    const five = await rx.wait(down, 5)
    expect(five.length).toBeGreaterThanOrEqual(5)
    let state = ''
    for (let i = 0; i < 100 && state !== 'open'; i++) {
      const [br] = await s.admin.sql<{ breaker_state: string }>(sql`select breaker_state from webhooks where id = ${w.id}`)
      state = br!.breaker_state
      if (state !== 'open') await Bun.sleep(20)
    }
    expect(state).toBe('open')
    // While open nothing is attempted, whatever is due (a request already in flight when it opened may land).
    await Bun.sleep(300)
    const atOpen = rx.got.filter((r) => r.path === down).length
    expect(atOpen).toBeLessThanOrEqual(6)
    await Bun.sleep(600)
    expect(rx.got.filter((r) => r.path === down)).toHaveLength(atOpen)
    // After the cooldown exactly one probe; it fails and the breaker opens again.
    const six = await rx.wait(down, atOpen + 1, 10_000)
    expect(six).toHaveLength(atOpen + 1)
    await Bun.sleep(600)
    expect(rx.got.filter((r) => r.path === down)).toHaveLength(atOpen + 1)
    // The receiver recovers: the next probe succeeds, the breaker closes and the rest flows.
    rx.up(down)
    const bodies = await rx.wait(down, 2, 15_000, (r) => r.at > six[atOpen]!.at && (r.body.includes('"one"') || r.body.includes('"two"')))
    expect(bodies.length).toBeGreaterThanOrEqual(1)
    for (let i = 0; i < 100; i++) {
      const [x] = await s.admin.sql<{ breaker_state: string; n: number }>(
        sql`select w.breaker_state, (select count(*)::int from webhook_deliveries d where d.webhook_id = w.id and d.state = 'pending') as n from webhooks w where w.id = ${w.id}`,
      )
      if (x!.breaker_state === 'closed' && x!.n === 0) break
      await Bun.sleep(100)
    }
    const [closed] = await s.admin.sql<{ breaker_state: string; consecutive_failures: number }>(sql`select breaker_state, consecutive_failures from webhooks where id = ${w.id}`)
    expect(closed).toEqual({ breaker_state: 'closed', consecutive_failures: 0 })
  })

  test('a delivery that fails every attempt of the schedule is dead-lettered and counted in health', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const down = `/down/dl-${a.handle}`
    const w = await hook(a, down, ['message.new'])
    // A breaker that never waits long: the cooldown is 1.5 s; the schedule has 8 retries.
    await b.client.sendMessage({ to: a.handle, content: { text: 'doomed' } })
    let dead = 0
    for (let i = 0; i < 300 && dead === 0; i++) {
      const [r] = await s.admin.sql<{ n: number }>(sql`select count(*)::int as n from webhook_dead_letters where webhook_id = ${w.id}`)
      dead = r!.n
      if (!dead) await Bun.sleep(100)
    }
    expect(dead).toBe(1)
    const attempts = rx.got.filter((r) => r.path === down)
    expect(attempts).toHaveLength(9) // the first attempt and 8 retries
    expect(new Set(attempts.map((r) => r.delivery)).size).toBe(1)
    const [row] = await s.admin.sql<{ n: number }>(sql`select count(*)::int as n from webhook_deliveries where webhook_id = ${w.id}`)
    expect(row!.n).toBe(0)
    // Health shows the outbox (counted every few seconds by each worker).
    let health: { webhooks?: { dead_letters: number } } = {}
    for (let i = 0; i < 80; i++) {
      health = (await api(s, 'GET', '/v1/health')).json as typeof health
      if ((health.webhooks?.dead_letters ?? 0) >= 1) break
      await Bun.sleep(100)
    }
    expect(health.webhooks?.dead_letters ?? 0).toBeGreaterThanOrEqual(1)
  })
})

describe('webhook targets (no WEBHOOK_ALLOW_PRIVATE)', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer('embedded')
  })
  afterAll(async () => {
    await s?.stop()
  })

  test('loopback, private, link-local, CGNAT, metadata and names resolving to them are refused, naming the rule', async () => {
    const a = await registerAgent(s)
    const cases: [string, string][] = [
      ['http://127.0.0.1:9/x', 'loopback'],
      ['http://localhost:9/x', 'loopback'],
      ['http://10.1.2.3/x', 'private'],
      ['http://192.168.0.10/x', 'private'],
      ['http://172.20.0.1/x', 'private'],
      ['http://169.254.169.254/latest/meta-data', 'link-local'],
      ['http://100.64.0.1/x', 'CGNAT'],
      ['http://[::1]/x', 'loopback'],
      ['http://[fd00::1]/x', 'unique local'],
      ['http://[::ffff:127.0.0.1]/x', 'loopback'],
      ['http://0.0.0.0/x', 'unspecified'],
      ['file:///etc/passwd', 'http or https'],
      ['http://user:pw@example.com/x', 'credentials'],
    ]
    for (const [url, rule] of cases) {
      const r = await api(s, 'POST', '/v1/webhooks', { key: a.apiKey, body: { url, events: ['message.new'] } })
      const body = r.json as { code: string; message: string; details?: { field?: string } }
      expect([url, r.status, body.code]).toEqual([url, 400, 'VALIDATION_ERROR'])
      expect(body.message).toContain(rule)
      expect(body.details?.field).toBe('url')
    }
    expect((await a.client.listWebhooks()).webhooks).toHaveLength(0)
  })

  test('the rule is re-checked after resolution at delivery time (DNS rebinding)', async () => {
    // A name that resolved publicly at creation and privately later is refused at delivery.
    let flips = 0
    const resolver = async () => [{ address: flips++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }]
    expect((await checkTarget('http://rebind.example/x', false, resolver)).ok).toBe(true)
    const later = await checkTarget('http://rebind.example/x', false, resolver)
    expect(later.ok).toBe(false)
    expect(!later.ok && later.rule).toContain('loopback')
    expect(addressRule('8.8.8.8')).toBeNull()
    expect(addressRule('2606:4700::1111')).toBeNull()
    expect(addressRule('64:ff9b::10.0.0.1')).toContain('private')
    expect(addressRule('fe80::1')).toContain('link-local')
  })
})
