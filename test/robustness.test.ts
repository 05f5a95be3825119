import { setDefaultTimeout, afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { ApiError } from '../src/http/errors.ts'
import { newId } from '../src/lib/ids.ts'
import type { WriteJob } from '../src/modules/messages/writer.ts'
import { api, backends, isSpawned, establishedPair, registerAgent, startTestServer, type TestServer } from './harness.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(60_000)

/*
 * One agent's bad input never hurts another and never answers 500 (issue 10): U+0000, invalid
 * UTF-8 and lone surrogates are refused at the edge naming the field; numbers in queries are
 * clamped; bodies are JSON or a 400; a job that still fails inside a shared batched statement is
 * isolated so only it fails.
 */

const NUL = '\u0000'

/** The flat error envelope, and nothing else. */
function expectEnvelope(r: { status: number; json: any }, status: number, code?: string) {
  expect(r.status).toBe(status)
  expect(typeof r.json?.code).toBe('string')
  expect(typeof r.json?.message).toBe('string')
  if (r.json.details !== undefined) expect(typeof r.json.details).toBe('object')
  if (code) expect(r.json.code).toBe(code)
}

describe.each(await backends())('robustness on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend)
  })
  afterAll(async () => {
    await s?.stop()
  })

  test('a poisoned send among many concurrent good ones: only the poisoned one fails, with 400', async () => {
    const senders = await Promise.all([0, 1, 2, 3].map(() => establishedPair(s)))
    const poisoner = await establishedPair(s)
    const goods: Promise<{ status: number; json: any }>[] = []
    const bads: Promise<{ status: number; json: any }>[] = []
    const poisons = [
      { content: { text: `bad${NUL}` } },
      { content: { text: 'ok' }, metadata: { [`k${NUL}`]: 1 } },
      { content: { data: { deep: [{ x: `y${NUL}` }] } } },
      { content: { text: 'ok' }, client_msg_id: `cm${NUL}x` },
      { content: { text: '\ud800 lone surrogate' } },
    ]
    for (let round = 0; round < 8; round++) {
      for (const p of senders) {
        for (let i = 0; i < 5; i++) {
          goods.push(api(s, 'POST', '/v1/messages', { key: p.a.apiKey, body: { to: p.b.handle, client_msg_id: `g-${round}-${i}-${crypto.randomUUID()}`, content: { text: `good ${round}.${i}` } } }))
        }
      }
      const poison = poisons[round % poisons.length]!
      bads.push(api(s, 'POST', '/v1/messages', { key: poisoner.a.apiKey, body: { to: poisoner.b.handle, client_msg_id: `p-${round}-${crypto.randomUUID()}`, ...poison } }))
    }
    const good = await Promise.all(goods)
    const bad = await Promise.all(bads)
    expect(good.map((r) => r.status).filter((st) => st !== 201)).toEqual([])
    for (const r of bad) {
      expectEnvelope(r, 400, 'VALIDATION_ERROR')
      // The message names the offending field.
      expect(r.json.message).toMatch(/content|metadata|client_msg_id/)
    }
    // Every good message is stored once; nothing of the poisoner's is.
    const counts = await s.admin.sql<{ n: string | number }>(sql`select count(*) as n from messages where content->>'text' like 'good %'`)
    expect(Number(counts[0]!.n)).toBe(goods.length)
    const poisonerId = await s.admin.agentId(poisoner.a.handle)
    const theirs = await s.admin.sql<{ n: string | number }>(sql`select count(*) as n from messages where sender_id = ${poisonerId} and client_msg_id like 'p-%'`)
    expect(Number(theirs[0]!.n)).toBe(0)
  })

  test('U+0000 and invalid UTF-8 on every kind of route: 4xx, never 500', async () => {
    const a = await registerAgent(s)
    const key = a.apiKey
    const cases: [string, string, { key?: string; body?: unknown; raw?: string }, number, string][] = [
      // Unauthenticated routes: bodies and path lookups.
      ['GET', '/v1/agents/a%00b', {}, 404, 'AGENT_NOT_FOUND'],
      ['GET', '/v1/agents/a%FFb', {}, 404, 'AGENT_NOT_FOUND'],
      ['GET', '/v1/agents/%C0%AF', {}, 404, 'AGENT_NOT_FOUND'],
      ['POST', '/v1/register', { body: { email: `x${NUL}@example.test`, handle: 'abcdef' } }, 400, 'VALIDATION_ERROR'],
      ['POST', '/v1/register', { body: { email: 'x@example.test', handle: `ab${NUL}cd` } }, 400, 'VALIDATION_ERROR'],
      ['POST', '/v1/register/verify', { body: { pending_id: `pnd_${NUL}`, code: '123456' } }, 400, 'VALIDATION_ERROR'],
      ['POST', '/v1/agents/recover', { body: { email: `a${NUL}@b.test` } }, 400, 'VALIDATION_ERROR'],
      ['POST', '/v1/agents/recover/verify', { body: { pending_id: 'pnd_x', code: `12${NUL}456` } }, 400, 'VALIDATION_ERROR'],
      // Queries and bodies of authenticated routes.
      ['GET', '/v1/directory?q=a%00b', { key }, 400, 'VALIDATION_ERROR'],
      ['GET', '/v1/directory?q=ab%FF', { key }, 400, 'VALIDATION_ERROR'],
      ['PATCH', `/v1/agents/${a.handle}`, { key, body: { display_name: `x${NUL}y` } }, 400, 'VALIDATION_ERROR'],
      ['POST', '/v1/contacts', { key, body: { handle: `b${NUL}` } }, 400, 'VALIDATION_ERROR'],
      ['GET', '/v1/contacts/a%00b', { key }, 200, ''],
      ['POST', '/v1/contacts/a%00b/block', { key }, 404, 'AGENT_NOT_FOUND'],
      ['POST', '/v1/groups', { key, body: { name: `g${NUL}` } }, 400, 'VALIDATION_ERROR'],
      ['GET', '/v1/groups/grp_%00', { key }, 404, 'GROUP_NOT_FOUND'],
      ['GET', '/v1/messages/conv_%00?limit=5', { key }, 404, 'CONVERSATION_NOT_FOUND'],
      ['POST', '/v1/mutes', { key, body: { target_kind: 'conversation', target_id: `conv_${NUL}` } }, 400, 'VALIDATION_ERROR'],
      ['PUT', '/v1/presence', { key, body: { status: 'online', custom_message: `hi${NUL}` } }, 400, 'VALIDATION_ERROR'],
      ['POST', '/v1/messages/sync/ack', { key, body: { last_delivery_id: `del_${NUL}` } }, 400, 'VALIDATION_ERROR'],
      ['GET', '/v1/presence/a%00b', { key }, 404, 'NOT_FOUND'],
      // A key with U+0000 in it.
      ['POST', '/v1/messages', { key, body: { to: 'someone', client_msg_id: 'x', content: { text: 'y' }, metadata: { [NUL]: 1 } } }, 400, 'VALIDATION_ERROR'],
    ]
    for (const [method, path, opts, status, code] of cases) {
      const r = await api(s, method, path, opts)
      if (r.status !== status) throw new Error(`${method} ${path}: expected ${status}, got ${r.status} ${r.text}`)
      if (status >= 400) expectEnvelope(r, status, code)
    }
    // Raw invalid UTF-8 bytes inside a JSON string, whatever the Content-Type.
    for (const contentType of ['application/json', 'text/plain']) {
      const res = await fetch(`${s.url}/v1/agents/${a.handle}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${key}`, 'content-type': contentType },
        body: new Uint8Array([...Buffer.from('{"display_name":"a'), 0xff, 0xfe, ...Buffer.from('"}')]),
      })
      const json = (await res.json()) as any
      expectEnvelope({ status: res.status, json }, 400, 'VALIDATION_ERROR')
      expect(json.message).toMatch(/UTF-8/)
    }
    // Still usable afterwards, and nothing was changed by the refused requests.
    const me = await api(s, 'GET', '/v1/agents/me', { key })
    expect(me.status).toBe(200)
    expect(me.json.display_name).toBeNull()
  })

  test('huge and negative numbers in queries are clamped to the documented range, one rule everywhere', async () => {
    const { a } = await establishedPair(s)
    const key = a.apiKey
    const contacts = await api(s, 'GET', '/v1/contacts?offset=99999999999999999999&limit=99999999999999999999', { key })
    expect(contacts.status).toBe(200)
    expect(contacts.json).toMatchObject({ contacts: [], limit: 100, offset: 1_000_000 })
    const negative = await api(s, 'GET', '/v1/contacts?offset=-5&limit=-5', { key })
    expect(negative.status).toBe(200)
    expect(negative.json).toMatchObject({ limit: 1, offset: 0 })
    expect(negative.json.contacts.length).toBe(1)
    const convs = await api(s, 'GET', '/v1/conversations?offset=99999999999999999999', { key })
    expect(convs.status).toBe(200)
    expect(convs.json).toEqual([])
    const firstPage = await api(s, 'GET', '/v1/conversations?limit=0', { key })
    expect(firstPage.status).toBe(200)
    expect(firstPage.json.length).toBe(1)
    const dir = await api(s, 'GET', `/v1/directory?q=${a.handle.slice(0, 5)}&offset=99999999999999999999&limit=999`, { key })
    expect(dir.json).toMatchObject({ limit: 50, offset: 10_000 })
    const sync = await api(s, 'GET', '/v1/messages/sync?limit=99999999999999999999', { key })
    expect(sync.status).toBe(200)
    const conv = convs.json.length ? convs.json[0].id : firstPage.json[0].id
    const history = await api(s, 'GET', `/v1/messages/${conv}?before_seq=99999999999999999999&limit=99999999999999999999`, { key })
    expect(history.status).toBe(200)
    expect(history.json.length).toBe(2)
    // Not an integer at all: a 400 naming the parameter.
    for (const path of ['/v1/contacts?limit=abc', '/v1/conversations?offset=1.5', `/v1/messages/${conv}?after_seq=x`, `/v1/messages/${conv}?before_seq=-1`, '/v1/messages/sync?limit=1e999']) {
      const r = await api(s, 'GET', path, { key })
      expectEnvelope(r, 400, 'VALIDATION_ERROR')
      expect(Object.keys(r.json.details.fieldErrors).length).toBe(1)
    }
  })

  test('bodies are JSON objects of the schema, whatever the Content-Type; settings take only their known keys', async () => {
    const a = await registerAgent(s)
    const key = a.apiKey
    const patch = (raw: string, contentType = 'application/json') =>
      api(s, 'PATCH', `/v1/agents/${a.handle}`, { key, raw, headers: { 'content-type': contentType } })
    for (const contentType of ['application/json', 'text/plain', 'application/x-www-form-urlencoded']) {
      const r = await patch('{not json', contentType)
      expectEnvelope(r, 400, 'VALIDATION_ERROR')
      expect(r.json.message).toBe('Invalid JSON body')
    }
    for (const raw of ['null', '[]', '"x"', '42', '{"settings":"str"}', '{"settings":null}', '{"settings":[]}', '{"settings":{"inbox_mode":"nope"}}']) {
      expectEnvelope(await patch(raw), 400, 'VALIDATION_ERROR')
    }
    const unknown = await patch('{"settings":{"inbox_mod":"contacts_only"}}')
    expectEnvelope(unknown, 400, 'VALIDATION_ERROR')
    expect(unknown.json.message).toContain('settings.inbox_mod')
    // JSON sent as text/plain is still JSON; an absent body is the current state; the removed
    // `discoverable` setting and unknown top-level keys are accepted and ignored.
    const ok = await patch('{"display_name":"Plain","settings":{"inbox_mode":"contacts_only","discoverable":true},"status":"x"}', 'text/plain')
    expect(ok.status).toBe(200)
    expect(ok.json).toMatchObject({ display_name: 'Plain', status: 'active', settings: { inbox_mode: 'contacts_only' } })
    expect(ok.json.settings.discoverable).toBeUndefined()
    expect((await api(s, 'PATCH', `/v1/agents/${a.handle}`, { key })).json.display_name).toBe('Plain')

    for (const settings of ['str', null, 5, { who_can_invite: 'everyone' }, { unknown_key: true }]) {
      expectEnvelope(await api(s, 'POST', '/v1/groups', { key, body: { name: 'g', settings } }), 400, 'VALIDATION_ERROR')
    }
    expectEnvelope(await api(s, 'POST', '/v1/groups', { key, raw: 'null' }), 400, 'VALIDATION_ERROR')
    const g = await api(s, 'POST', '/v1/groups', { key, body: { name: 'g', settings: { who_can_invite: 'admin' } } })
    expect(g.status).toBe(201)
    expectEnvelope(await api(s, 'PATCH', `/v1/groups/${g.json.group.id}`, { key, body: { settings: { x: 1 } } }), 400, 'VALIDATION_ERROR')
    // Bodies over the JSON cap are a 413 envelope, not a dropped connection.
    const huge = await api(s, 'POST', '/v1/messages', { key, raw: JSON.stringify({ to: 'x', client_msg_id: 'y', content: { text: 'z'.repeat(2 * 1024 * 1024) } }) })
    expectEnvelope(huge, 413, 'PAYLOAD_TOO_LARGE')
    // Very deep nesting is refused before it reaches the database.
    const deep = await api(s, 'POST', '/v1/messages', { key, raw: `{"to":"x","client_msg_id":"y","content":{"data":{"d":${'['.repeat(200)}${']'.repeat(200)}}}}` })
    expectEnvelope(deep, 400, 'VALIDATION_ERROR')
  })

  // The in-process backends reach the server's own writers, to prove isolation inside a shared
  // statement even for input the edge checks would have refused.
  if (!isSpawned(backend)) {
    test('a job that fails inside a shared batch is isolated: it alone gets the error, every other job commits', async () => {
      const ctx = s.running.ctx
      const pairs = await Promise.all([0, 1, 2].map(() => establishedPair(s)))
      const ids = await Promise.all(pairs.map(async (p) => ({ conv: p.conversationId, a: await s.admin.agentId(p.a.handle), b: await s.admin.agentId(p.b.handle) })))
      const job = (i: number, text: string): WriteJob => {
        const p = ids[i % ids.length]!
        return { id: newId('msg'), conversationId: p.conv, senderId: p.a, clientMsgId: `iso-${crypto.randomUUID()}`, type: 'text', content: { text }, metadata: {}, createdAt: new Date() }
      }
      // Queued in one tick: they go out in the same flush, so the poisoned ones share statements with the good ones.
      const jobs = Array.from({ length: 60 }, (_, i) => (i % 20 === 7 ? job(i, `poison${NUL}`) : job(i, `fine ${i}`)))
      const settled = await Promise.allSettled(jobs.map((j) => ctx.writer.write(j)))
      settled.forEach((r, i) => {
        const poisoned = i % 20 === 7
        expect(r.status).toBe(poisoned ? 'rejected' : 'fulfilled')
        if (r.status === 'rejected') {
          expect(r.reason).toBeInstanceOf(ApiError)
          expect((r.reason as ApiError).status).toBe(400)
        }
      })
      const stored = await s.admin.sql<{ n: string | number }>(sql`select count(*) as n from messages where client_msg_id like 'iso-%'`)
      expect(Number(stored[0]!.n)).toBe(57)
      // Seqs stay gap-free per conversation after the split retries.
      for (const p of ids) {
        const seqs = await s.admin.sql<{ seq: string | number }>(sql`select seq from messages where conversation_id = ${p.conv} order by seq`)
        expect(seqs.map((r) => Number(r.seq))).toEqual(seqs.map((_, i) => i + 1))
      }
    })

    test('one bad ack does not drop the acks it was batched with', async () => {
      const ctx = s.running.ctx
      const { a, b } = await establishedPair(s)
      for (let i = 0; i < 5; i++) await a.client.sendMessage({ to: b.handle, content: { text: `ack ${i}` } })
      const sent = await b.client.sync() // a's "hi" and the five
      expect(sent.length).toBe(6)
      const bId = await s.admin.agentId(b.handle)
      sent.forEach((m, i) => {
        if (i === 2) ctx.acks.markDelivered(bId, `msg_${NUL}bad`)
        ctx.acks.markDelivered(bId, m.id)
      })
      await ctx.acks.drain()
      // The cursor moved past all five: every good ack was applied.
      const [row] = await s.admin.sql<{ d: string | number }>(sql`select delivered_seq as d from conversation_members where agent_id = ${bId} and conversation_id = ${sent[0]!.conversation_id}`)
      expect(Number(row!.d)).toBe(sent.at(-1)!.seq!)
      expect(await b.client.sync()).toEqual([])
    })

    test('an unexpected exception is a 500 envelope carrying the request id', async () => {
      const ctx = s.running.ctx
      const original = ctx.agents.getByHandle.bind(ctx.agents)
      ctx.agents.getByHandle = async () => {
        throw new Error('injected fault')
      }
      try {
        const r = await api(s, 'GET', '/v1/agents/anyone', { headers: { 'x-request-id': 'req-robustness-1' } })
        expectEnvelope(r, 500, 'INTERNAL_ERROR')
        expect(r.json.message).toBe('An unexpected error occurred')
        expect(r.json.details).toEqual({ request_id: 'req-robustness-1' })
        expect(r.headers.get('x-request-id')).toBe('req-robustness-1')
        expect(r.text).not.toContain('injected fault')
      } finally {
        ctx.agents.getByHandle = original
      }
    })
  }
})
