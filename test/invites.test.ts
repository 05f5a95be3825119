import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { createHash } from 'node:crypto'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import { api, backends, registerAgent, rejection, startTestServer, type Registered, type TestServer } from './harness.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(120_000)

/*
 * Connection invites (seed 001, Context Exchange) on every backend: the lifecycle and every
 * error code, what an accept leaves behind (contacts both ways through the SDK, the permission
 * rows of both directions, an established conversation the SDK can message both ways at once),
 * revocation, expiry, the creation limit, and accepts under contention — one invite, ten
 * acceptors; accept racing revoke; mutual invites; an accept racing the pair's first cold send.
 */

const CODE = /^ic_[A-Za-z0-9_-]{43}$/
const PRESET_LEVELS = {
  friends: { info: 'auto', requests: 'auto', personal: 'ask' },
  coworkers: { info: 'auto', requests: 'auto', personal: 'never' },
  casual: { info: 'auto', requests: 'ask', personal: 'never' },
} as const

async function deadlocks(url: string): Promise<number> {
  const c = postgres(url, { max: 1, onnotice: () => {} })
  try {
    // Backends flush their statistics about once a second.
    await Bun.sleep(1500)
    await c`select pg_stat_clear_snapshot()`
    const [r] = await c`select deadlocks from pg_stat_database where datname = current_database()`
    return Number(r?.deadlocks ?? 0)
  } finally {
    await c.end()
  }
}

describe.each(await backends())('connection invites on %s', (backend) => {
  let s: TestServer
  let deadlocksBefore = 0
  beforeAll(async () => {
    s = await startTestServer(backend)
    if (s.databaseUrl) deadlocksBefore = await deadlocks(s.databaseUrl)
  })
  afterAll(async () => {
    await s?.stop()
  })

  const create = async (who: Registered) => {
    const r = await api(s, 'POST', '/v1/invites', { key: who.apiKey })
    expect(r.status).toBe(201)
    return r.json as { id: string; invite_code: string; join_url: string; expires_at: string }
  }
  const accept = (who: Registered, code: string, body?: unknown) => api(s, 'POST', `/v1/invites/${code}/accept`, { key: who.apiKey, body })
  const revoke = (who: Registered, codeOrId: string) => api(s, 'DELETE', `/v1/invites/${codeOrId}`, { key: who.apiKey })
  const pending = async (who: Registered) => (await api(s, 'GET', '/v1/invites', { key: who.apiKey })).json.invites as { id: string }[]
  const contactsOf = async (who: Registered) => (await who.client.listContacts()).contacts.map((c) => c.handle)

  async function permissionRows(x: Registered, y: Registered) {
    const [xi, yi] = [await s.admin.agentId(x.handle), await s.admin.agentId(y.handle)]
    const rows = await s.admin.sql<{ owner_id: string; contact_id: string; contract: string; info: string; requests: string; personal: string }>(
      sql`select owner_id, contact_id, contract, info, requests, personal from contact_permissions
          where (owner_id = ${xi} and contact_id = ${yi}) or (owner_id = ${yi} and contact_id = ${xi}) order by owner_id = ${xi} desc`,
    )
    return rows.map((r) => ({ owner: r.owner_id === xi ? x.handle : y.handle, contract: r.contract, levels: { info: r.info, requests: r.requests, personal: r.personal } }))
  }

  async function conversationRow(x: Registered, y: Registered) {
    const [xi, yi] = [await s.admin.agentId(x.handle), await s.admin.agentId(y.handle)]
    const [a, b] = xi < yi ? [xi, yi] : [yi, xi]
    return s.admin.sql<{ id: string; established: boolean; established_at: Date | string | null; initiator_id: string }>(
      sql`select id, established, established_at, initiator_id from conversations where type = 'direct' and agent_a = ${a} and agent_b = ${b}`,
    )
  }

  /** Two messages each way, right away: no AWAITING_REPLY in an established conversation. */
  async function chatsFreely(x: Registered, y: Registered) {
    const ids = new Set<string>()
    for (const [from, to] of [
      [x, y],
      [x, y],
      [y, x],
      [y, x],
    ] as const) {
      const r = await from.client.sendMessage({ to: to.handle, content: { text: `from ${from.handle}` } })
      ids.add(r.message.conversation_id)
    }
    expect(ids.size).toBe(1)
    return [...ids][0]!
  }

  test('create → list → accept: contacts both ways, both directions on the chosen preset, an established conversation, then INVITE_USED', async () => {
    const [a, b, c] = [await registerAgent(s, undefined, { display_name: 'Alice' }), await registerAgent(s), await registerAgent(s)]
    const before = Date.now()
    const inv = await create(a)
    expect(inv.id).toMatch(/^inv_[A-Za-z0-9_-]{16}$/)
    expect(inv.invite_code).toMatch(CODE)
    expect(inv.join_url).toBe(`${s.url}/setup/${inv.invite_code}`)
    const ttl = Date.parse(inv.expires_at) - before
    expect(ttl).toBeGreaterThan(86_400_000 - 60_000)
    expect(ttl).toBeLessThan(86_400_000 + 60_000)
    // Only the hash is stored, never the code itself.
    const [row] = await s.admin.sql<Record<string, unknown>>(sql`select * from connection_invites where id = ${inv.id}`)
    expect(row!.code_hash).toBe(createHash('sha256').update(inv.invite_code).digest('hex'))
    expect(JSON.stringify(row)).not.toContain(inv.invite_code.slice(3))
    // Two invites are two codes.
    const other = await create(a)
    expect(other.invite_code).not.toBe(inv.invite_code)
    expect((await pending(a)).map((i) => i.id)).toEqual([other.id, inv.id])
    expect(await pending(b)).toEqual([])

    const r = await accept(b, inv.invite_code, { contract: 'coworkers' })
    expect(r.status).toBe(200)
    expect(r.json).toMatchObject({
      contact: { handle: a.handle, display_name: 'Alice', avatar_url: null },
      contract: 'coworkers',
      permissions: PRESET_LEVELS.coworkers,
    })
    expect(r.json.conversation_id).toMatch(/^conv_/)

    expect(await contactsOf(a)).toEqual([b.handle])
    expect(await contactsOf(b)).toEqual([a.handle])
    expect((await a.client.checkContact(b.handle)).is_contact).toBe(true)
    expect(await permissionRows(a, b)).toEqual([
      { owner: a.handle, contract: 'coworkers', levels: PRESET_LEVELS.coworkers },
      { owner: b.handle, contract: 'coworkers', levels: PRESET_LEVELS.coworkers },
    ])
    const [conv] = await conversationRow(a, b)
    expect(conv).toMatchObject({ id: r.json.conversation_id, established: true, initiator_id: await s.admin.agentId(a.handle) })
    expect(conv!.established_at).not.toBeNull()
    const [used] = await s.admin.sql<{ accepted_by: string; contract: string; accepted_at: unknown }>(sql`select accepted_by, contract, accepted_at from connection_invites where id = ${inv.id}`)
    expect(used).toMatchObject({ accepted_by: await s.admin.agentId(b.handle), contract: 'coworkers' })

    // The inviter's second message goes through at once, and the invitee's too.
    expect(await chatsFreely(a, b)).toBe(r.json.conversation_id)
    const history = await b.client.getMessages(r.json.conversation_id, { limit: 10 })
    expect(history.length).toBe(4)

    // Used up: for anyone, the acceptor included; and no longer pending.
    for (const who of [c, b]) {
      const again = await accept(who, inv.invite_code)
      expect(again.status).toBe(409)
      expect(again.json.code).toBe('INVITE_USED')
    }
    expect((await pending(a)).map((i) => i.id)).toEqual([other.id])
    expect(await contactsOf(c)).toEqual([])
    const late = await revoke(a, inv.invite_code)
    expect(late.status).toBe(409)
    expect(late.json.code).toBe('INVITE_USED')
  })

  test('the contract defaults to friends; casual; anything else is a 400 that consumes nothing', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const inv = await create(a)
    const bad = await accept(b, inv.invite_code, { contract: 'enemies' })
    expect(bad.status).toBe(400)
    expect(bad.json.code).toBe('VALIDATION_ERROR')
    const ok = await accept(b, inv.invite_code)
    expect(ok.status).toBe(200)
    expect(ok.json).toMatchObject({ contract: 'friends', permissions: PRESET_LEVELS.friends })
    expect((await permissionRows(a, b)).map((p) => p.contract)).toEqual(['friends', 'friends'])

    const inv2 = await create(c)
    expect((await accept(a, inv2.invite_code, { contract: 'casual' })).status).toBe(200)
    expect(await permissionRows(c, a)).toEqual([
      { owner: c.handle, contract: 'casual', levels: PRESET_LEVELS.casual },
      { owner: a.handle, contract: 'casual', levels: PRESET_LEVELS.casual },
    ])
    expect((await contactsOf(a)).sort()).toEqual([b.handle, c.handle].sort())
  })

  test('an existing cold conversation is established: AWAITING_REPLY before the accept, free messaging after, one conversation', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    // b writes to a first (cold); a's invite is then accepted by b.
    const first = await b.client.sendMessage({ to: a.handle, content: { text: 'hello, cold' } })
    const waiting = await rejection(b.client.sendMessage({ to: a.handle, content: { text: 'again' } }))
    expect(waiting.code).toBe('AWAITING_REPLY')
    expect(waiting.status).toBe(403)
    // A replay of the first message still answers 200 with the original.
    const replay = await api(s, 'POST', '/v1/messages', { key: b.apiKey, body: { to: a.handle, client_msg_id: first.message.client_msg_id, content: { text: 'hello, cold' } } })
    expect(replay.status).toBe(200)
    expect(replay.json.id).toBe(first.message.id)
    const [cold] = await conversationRow(a, b)
    expect(cold!.established).toBe(false)

    const inv = await create(a)
    const r = await accept(b, inv.invite_code, { contract: 'friends' })
    expect(r.status).toBe(200)
    expect(r.json.conversation_id).toBe(first.message.conversation_id)
    const rows = await conversationRow(a, b)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ id: first.message.conversation_id, established: true, initiator_id: await s.admin.agentId(b.handle) })
    expect(await chatsFreely(b, a)).toBe(first.message.conversation_id)
    expect(await contactsOf(a)).toEqual([b.handle])
  })

  test('a worker whose cache still holds the cold conversation after the accept does not refuse with AWAITING_REPLY', async () => {
    // In-process backends only: the test plants the stale copy in the server's own cache, as a
    // cold send that committed just before the accept (and was remembered after its invalidation) would.
    if (!s.running) return
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    await b.client.sendMessage({ to: a.handle, content: { text: 'cold' } })
    const directs = s.running.ctx.directs
    const [ai, bi] = [await s.admin.agentId(a.handle), await s.admin.agentId(b.handle)]
    const stale = await directs.get(ai, bi)
    expect(stale!.established).toBe(false)
    expect((await accept(b, (await create(a)).invite_code)).status).toBe(200)
    directs.remember(stale!)
    expect((await directs.get(ai, bi))!.established).toBe(false)
    await b.client.sendMessage({ to: a.handle, content: { text: 'second, right away' } })
    expect((await directs.get(ai, bi))!.established).toBe(true)
  })

  test('errors: unknown and malformed codes 404, your own invite 400, a block either way 403 (and the invite stays usable), no key 401', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const inv = await create(a)
    for (const code of [`ic_${'A'.repeat(43)}`, 'ic_short', 'nonsense', inv.id]) {
      const r = await accept(b, code)
      expect(r.status).toBe(404)
      expect(r.json.code).toBe('INVITE_NOT_FOUND')
    }
    const own = await accept(a, inv.invite_code)
    expect(own.status).toBe(400)
    expect(own.json.code).toBe('VALIDATION_ERROR')
    expect((await api(s, 'POST', `/v1/invites/${inv.invite_code}/accept`)).status).toBe(401)
    expect((await api(s, 'POST', '/v1/invites')).status).toBe(401)
    expect((await api(s, 'GET', '/v1/invites')).status).toBe(401)

    // The acceptor blocked the inviter, then the inviter blocked the acceptor: 403 both ways.
    await b.client.blockAgent(a.handle)
    const blocked = await accept(b, inv.invite_code)
    expect(blocked.status).toBe(403)
    expect(blocked.json.code).toBe('BLOCKED')
    await b.client.unblockAgent(a.handle)
    await a.client.blockAgent(b.handle)
    const blocked2 = await accept(b, inv.invite_code)
    expect(blocked2.status).toBe(403)
    expect(blocked2.json.code).toBe('BLOCKED')
    // Nothing happened: no contacts, no permissions, no conversation, still pending.
    expect(await contactsOf(b)).toEqual([])
    expect(await permissionRows(a, b)).toEqual([])
    expect(await conversationRow(a, b)).toEqual([])
    expect((await pending(a)).map((i) => i.id)).toEqual([inv.id])
    // A third agent, blocked by nobody, can still take it.
    expect((await accept(c, inv.invite_code)).status).toBe(200)
  })

  test('an inviter that is gone: 404 AGENT_NOT_FOUND', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const inv = await create(a)
    await a.client.deleteAgent(a.handle)
    const r = await accept(b, inv.invite_code)
    expect(r.status).toBe(404)
    expect(r.json.code).toBe('AGENT_NOT_FOUND')
  })

  test('revoke: by code or id, the inviter only; then INVITE_REVOKED for accept and revoke', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const [byCode, byId] = [await create(a), await create(a)]
    // Someone else's invite, or an unknown one, is a 404.
    for (const target of [byCode.invite_code, byCode.id, `ic_${'z'.repeat(43)}`, 'inv_AAAAAAAAAAAAAAAA', 'junk']) {
      const r = await revoke(b, target)
      expect(r.status).toBe(404)
      expect(r.json.code).toBe('INVITE_NOT_FOUND')
    }
    const ok = await revoke(a, byCode.invite_code)
    expect(ok.status).toBe(200)
    expect(ok.json).toEqual({ ok: true })
    expect((await revoke(a, byId.id)).status).toBe(200)
    for (const inv of [byCode, byId]) {
      const r = await accept(b, inv.invite_code)
      expect(r.status).toBe(410)
      expect(r.json.code).toBe('INVITE_REVOKED')
      const again = await revoke(a, inv.id)
      expect(again.status).toBe(410)
      expect(again.json.code).toBe('INVITE_REVOKED')
    }
    expect(await pending(a)).toEqual([])
    expect(await contactsOf(b)).toEqual([])
  })

  test('expiry: an invite past expires_at is INVITE_EXPIRED for accept and revoke, and no longer pending', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const inv = await create(a)
    await s.admin.sql(sql`update connection_invites set expires_at = now() - interval '1 second' where id = ${inv.id}`)
    const r = await accept(b, inv.invite_code)
    expect(r.status).toBe(410)
    expect(r.json.code).toBe('INVITE_EXPIRED')
    const rv = await revoke(a, inv.invite_code)
    expect(rv.status).toBe(410)
    expect(rv.json.code).toBe('INVITE_EXPIRED')
    expect(await pending(a)).toEqual([])
    expect(await contactsOf(b)).toEqual([])
  })

  test('creation is limited to 50 per agent per 24 hours (429 with Retry-After); others are unaffected', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const rs = await Promise.all(Array.from({ length: 50 }, () => api(s, 'POST', '/v1/invites', { key: a.apiKey })))
    expect(rs.every((r) => r.status === 201)).toBe(true)
    const over = await api(s, 'POST', '/v1/invites', { key: a.apiKey })
    expect(over.status).toBe(429)
    expect(over.json.code).toBe('RATE_LIMITED')
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(86_000)
    expect(over.json.details.retry_after_ms).toBeGreaterThan(86_000_000)
    expect((await pending(a)).length).toBe(50)
    expect((await api(s, 'POST', '/v1/invites', { key: b.apiKey })).status).toBe(201)
  })

  test('10 agents accept one invite at once: exactly one succeeds, nine get INVITE_USED', async () => {
    const a = await registerAgent(s)
    const takers = await Promise.all(Array.from({ length: 10 }, () => registerAgent(s)))
    const inv = await create(a)
    const rs = await Promise.all(takers.map((t) => accept(t, inv.invite_code, { contract: 'casual' })))
    const winners = rs.flatMap((r, i) => (r.status === 200 ? [takers[i]!] : []))
    expect(winners).toHaveLength(1)
    expect(rs.filter((r) => r.status !== 200).map((r) => [r.status, r.json.code])).toEqual(Array.from({ length: 9 }, () => [409, 'INVITE_USED']))
    const winner = winners[0]!
    expect(await contactsOf(a)).toEqual([winner.handle])
    const aId = await s.admin.agentId(a.handle)
    const [counts] = await s.admin.sql<{ contacts: number; perms: number; convs: number }>(sql`select
      (select count(*)::int from contacts where owner_id = ${aId} or contact_id = ${aId}) as contacts,
      (select count(*)::int from contact_permissions where owner_id = ${aId} or contact_id = ${aId}) as perms,
      (select count(*)::int from conversations where type = 'direct' and (agent_a = ${aId} or agent_b = ${aId})) as convs`)
    expect(counts).toEqual({ contacts: 2, perms: 2, convs: 1 })
    expect(await chatsFreely(a, winner)).toMatch(/^conv_/)
  })

  test('accept racing revoke: exactly one of them wins, and the state matches the winner', async () => {
    for (let round = 0; round < 4; round++) {
      const [a, b] = [await registerAgent(s), await registerAgent(s)]
      const inv = await create(a)
      const [acc, rev] = await Promise.all([accept(b, inv.invite_code), revoke(a, inv.invite_code)])
      const accepted = acc.status === 200
      expect(accepted !== (rev.status === 200)).toBe(true)
      if (accepted) expect(rev.json.code).toBe('INVITE_USED')
      else expect(acc.json.code).toBe('INVITE_REVOKED')
      expect(await contactsOf(b)).toEqual(accepted ? [a.handle] : [])
    }
  })

  test('mutual invites accepted at the same moment, and an accept racing the pair\'s first cold send: one conversation, established', async () => {
    for (let round = 0; round < 3; round++) {
      const [a, b] = [await registerAgent(s), await registerAgent(s)]
      const [ia, ib] = [await create(a), await create(b)]
      const rs = await Promise.all([accept(b, ia.invite_code, { contract: 'coworkers' }), accept(a, ib.invite_code, { contract: 'coworkers' })])
      expect(rs.map((r) => r.status)).toEqual([200, 200])
      expect(rs[0]!.json.conversation_id).toBe(rs[1]!.json.conversation_id)
      const rows = await conversationRow(a, b)
      expect(rows).toHaveLength(1)
      expect(rows[0]!.established).toBe(true)
      expect((await permissionRows(a, b)).map((p) => p.contract)).toEqual(['coworkers', 'coworkers'])
    }
    for (let round = 0; round < 3; round++) {
      const [a, b] = [await registerAgent(s), await registerAgent(s)]
      const inv = await create(a)
      const [acc, sent] = await Promise.all([accept(b, inv.invite_code), a.client.sendMessage({ to: b.handle, content: { text: 'cold hello' } })])
      expect(acc.status).toBe(200)
      expect(acc.json.conversation_id).toBe(sent.message.conversation_id)
      const rows = await conversationRow(a, b)
      expect(rows).toHaveLength(1)
      expect(rows[0]!.established).toBe(true)
      await chatsFreely(a, b)
    }
  })

  test('OpenAPI documents the invite routes and their errors; the pages stay out of it', async () => {
    const spec = (await api(s, 'GET', '/v1/openapi.json')).json
    const acceptOp = spec.paths['/v1/invites/{code}/accept'].post
    expect(acceptOp.security).toEqual([{ bearer: [] }, { apiKey: [] }])
    expect(acceptOp.requestBody.content['application/json'].schema.properties.contract).toBeDefined()
    expect(acceptOp.responses['200']).toBeDefined()
    expect(acceptOp.responses['409'].description).toContain('INVITE_USED')
    expect(acceptOp.responses['410'].description).toContain('INVITE_EXPIRED')
    expect(acceptOp.responses['410'].description).toContain('INVITE_REVOKED')
    expect(acceptOp.responses['404'].description).toContain('INVITE_NOT_FOUND')
    expect(acceptOp.responses['403'].description).toContain('BLOCKED')
    expect(acceptOp.responses['400'].description).toContain('VALIDATION_ERROR')
    expect(spec.paths['/v1/invites'].post.responses['201']).toBeDefined()
    expect(spec.paths['/v1/invites'].post.responses['429'].description).toContain('RATE_LIMITED')
    expect(spec.paths['/v1/invites'].get).toBeDefined()
    expect(spec.paths['/v1/invites/{code}'].delete.responses['410']).toBeDefined()
    for (const p of ['/setup', '/setup/{invite_code}', '/llms.txt']) expect(spec.paths[p]).toBeUndefined()
  })

  test('no deadlock anywhere in this file (Postgres backends)', async () => {
    if (!s.databaseUrl) return
    expect(await deadlocks(s.databaseUrl)).toBe(deadlocksBefore)
  })
})
