import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { api, backends, registerAgent, startTestServer, type Registered, type TestServer } from './harness.ts'
import { OwnerClient } from './owner-client.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * Agent memories (Thenvoi, seed 004) on every backend. The organisation is the set of agents
 * claimed by one owner: two owners sign in and claim agents (as test/owners.test.ts does), and
 * each agent sees its own memories plus organisation-scoped ones of its organisation — nothing
 * else, and anything else is a 404. Only the author deletes (supersedes).
 */

let n = 0
const ownerEmail = () => `mem-owner-${Date.now().toString(36)}${(n++).toString(36)}@example.test`

describe.each(await backends())('memories on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend)
  })
  afterAll(async () => {
    await s?.stop()
  })

  const store = (who: Registered, body: Record<string, unknown>) => api(s, 'POST', '/v1/memories', { key: who.apiKey, body })
  const list = (who: Registered, q = '') => api(s, 'GET', `/v1/memories${q}`, { key: who.apiKey })
  const get = (who: Registered, id: string) => api(s, 'GET', `/v1/memories/${id}`, { key: who.apiKey })
  const del = (who: Registered, id: string) => api(s, 'DELETE', `/v1/memories/${id}`, { key: who.apiKey })

  async function owner(...agents: Registered[]) {
    const o = new OwnerClient(s, ownerEmail())
    await o.signIn()
    for (const a of agents) expect((await o.claim(a.apiKey)).status).toBe(201)
    return o
  }

  test('store: 201 with the memory; validation of content, subject and scope', async () => {
    const a = await registerAgent(s)
    const r = await store(a, { content: 'Prefers concise answers', subject: 'user:alice', scope: 'subject' })
    expect(r.status).toBe(201)
    expect(r.json).toMatchObject({ content: 'Prefers concise answers', subject: 'user:alice', scope: 'subject', author: a.handle })
    expect(r.json.id).toMatch(/^mem_/)
    expect(Math.abs(Date.parse(r.json.created_at) - Date.now())).toBeLessThan(60_000)
    expect(Object.keys(r.json).sort()).toEqual(['author', 'content', 'created_at', 'id', 'scope', 'subject'])
    expect((await store(a, { content: 'no subject', scope: 'organization' })).json.subject).toBeNull()
    expect((await store(a, { content: 'x'.repeat(10_000), scope: 'subject' })).status).toBe(201)
    for (const bad of [
      { content: '', scope: 'subject' },
      { content: 'x'.repeat(10_001), scope: 'subject' },
      { content: 'ok', subject: 's'.repeat(201), scope: 'subject' },
      { content: 'ok', scope: 'everyone' },
      { content: 'ok' },
      { scope: 'subject' },
      { content: 42, scope: 'subject' },
    ]) {
      const x = await store(a, bad)
      expect([x.status, x.json.code]).toEqual([400, 'VALIDATION_ERROR'])
    }
    expect((await api(s, 'POST', '/v1/memories', { body: { content: 'x', scope: 'subject' } })).status).toBe(401)
  })

  test('the organisation rule with two owners: own + organisation-scoped of co-claimed agents; nothing across owners or to the unclaimed; 404 outside', async () => {
    const [a1, a2, b1, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const o1 = await owner(a1, a2)
    await owner(b1)
    const orgA1 = (await store(a1, { content: 'Team deploys on Fridays', subject: 'process', scope: 'organization' })).json
    const privA1 = (await store(a1, { content: 'a1 private note', subject: 'process', scope: 'subject' })).json
    const orgA2 = (await store(a2, { content: 'a2 shares this', scope: 'organization' })).json
    const orgB1 = (await store(b1, { content: 'other company secret', scope: 'organization' })).json
    const orgC = (await store(c, { content: 'c is an org of one', scope: 'organization' })).json

    const ids = async (who: Registered, q = '') => (await list(who, q)).json.memories.map((m: any) => m.id)
    // Newest first.
    expect(await ids(a1)).toEqual([orgA2.id, privA1.id, orgA1.id])
    expect(await ids(a2)).toEqual([orgA2.id, orgA1.id])
    expect(await ids(b1)).toEqual([orgB1.id])
    expect(await ids(c)).toEqual([orgC.id])
    expect((await list(a1)).json).toMatchObject({ total: 3, limit: 50, offset: 0 })
    expect((await list(a1)).json.memories[0]).toEqual(orgA2)

    // One memory: readable inside, 404 (never 403) outside.
    expect((await get(a2, orgA1.id)).json).toEqual(orgA1)
    expect((await get(a1, privA1.id)).json).toEqual(privA1)
    for (const [who, id] of [[a2, privA1.id], [b1, orgA1.id], [b1, privA1.id], [c, orgA1.id], [a1, orgB1.id], [a1, orgC.id], [a1, 'mem_doesnotexist000000']] as const) {
      const r = await get(who, id)
      expect([r.status, r.json.code]).toEqual([404, 'MEMORY_NOT_FOUND'])
    }

    // ?subject= and paging.
    expect(await ids(a1, '?subject=process')).toEqual([privA1.id, orgA1.id])
    expect(await ids(a2, '?subject=process')).toEqual([orgA1.id])
    expect(await ids(a1, '?subject=nothing')).toEqual([])
    const page = (await list(a1, '?limit=1&offset=1')).json
    expect(page).toMatchObject({ total: 3, limit: 1, offset: 1 })
    expect(page.memories.map((m: any) => m.id)).toEqual([privA1.id])
    expect((await list(a1, '?limit=x')).status).toBe(400)

    // The organisation is read at each request: released, a2 no longer sees a1's memories (and vice versa).
    expect((await o1.call('DELETE', `/dashboard/agents/${a2.handle}`)).status).toBe(200)
    expect(await ids(a2)).toEqual([orgA2.id])
    expect(await ids(a1)).toEqual([privA1.id, orgA1.id])
    expect((await get(a2, orgA1.id)).status).toBe(404)
  })

  test('delete supersedes: only the author (organisation members and strangers 404); then gone for everyone', async () => {
    const [a1, a2, b1] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    await owner(a1, a2)
    await owner(b1)
    const m = (await store(a1, { content: 'to be superseded', scope: 'organization' })).json
    for (const who of [a2, b1]) {
      const r = await del(who, m.id)
      expect([r.status, r.json.code]).toEqual([404, 'MEMORY_NOT_FOUND'])
    }
    expect((await get(a2, m.id)).status).toBe(200) // still there
    const ok = await del(a1, m.id)
    expect([ok.status, ok.json]).toEqual([200, { ok: true }])
    for (const who of [a1, a2]) {
      expect((await get(who, m.id)).status).toBe(404)
      expect((await list(who)).json.memories.map((x: any) => x.id)).not.toContain(m.id)
    }
    expect((await del(a1, m.id)).status).toBe(404)
    // Superseded, not erased: the row remains with its time.
    const { sql } = await import('drizzle-orm')
    const rows = await s.admin.sql<{ superseded_at: unknown }>(sql`select superseded_at from memories where id = ${m.id}`)
    expect(rows[0]!.superseded_at).not.toBeNull()
  })
})
