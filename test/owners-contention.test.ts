import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import postgres from 'postgres'
import { api, backends, registerAgent, startTestServer, type TestServer } from './harness.ts'
import { OwnerClient } from './owner-client.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(120_000)

/*
 * The owner and operator writes under contention on real Postgres (few rows, many writers):
 * claims of one agent by many owners, refreshes of one token at once, pause / unpause / release
 * racing on one claim, many announcements fanned out at once by two shard workers, and one
 * agent's concurrent messages to the system agent. Nothing is timed; what must hold: no deadlock
 * (pg_stat_database.deadlocks unchanged), no lost or doubled update, one winner where there can
 * be only one.
 */

const BACKENDS = (await backends()).filter((b) => b === 'postgres' || b === 'sharded')
const ADMIN_KEY = 'admin-key-for-tests-0123456789'
const OPS = 'ops-token-for-tests-0123456789'

async function deadlocks(url: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    // Statistics are flushed by backends at most about once a second.
    await Bun.sleep(1500)
    await sql`select pg_stat_clear_snapshot()`
    const [r] = await sql`select deadlocks from pg_stat_database where datname = current_database()`
    return Number(r?.deadlocks ?? 0)
  } finally {
    await sql.end()
  }
}

let n = 0
const email = () => `cont-${Date.now().toString(36)}${(n++).toString(36)}@example.test`

describe.each(BACKENDS)('owner and operator writes under contention on %s', (backend) => {
  let s: TestServer
  let before = 0
  beforeAll(async () => {
    s = await startTestServer(backend, { ADMIN_KEY, OPS_ADMIN_TOKEN: OPS, ANNOUNCEMENT_BATCH: '1' })
    before = await deadlocks(s.databaseUrl!)
  })
  afterAll(async () => {
    await s?.stop()
  })

  test('12 owners claim one agent at once: exactly one wins, the rest 409, one claim row', async () => {
    const owners = await Promise.all(Array.from({ length: 12 }, async () => {
      const o = new OwnerClient(s, email())
      await o.signIn()
      return o
    }))
    const a = await registerAgent(s)
    const rs = await Promise.all(owners.map((o) => o.claim(a.apiKey)))
    expect(rs.filter((r) => r.status === 201).length).toBe(1)
    expect(rs.filter((r) => r.status !== 201).every((r) => r.json.code === 'ALREADY_CLAIMED' || r.json.code === 'TOO_MANY_CLAIMS')).toBe(true)
    const id = await s.admin.agentId(a.handle)
    const rows = await s.admin.sql<{ n: number }>(await import('drizzle-orm').then(({ sql }) => sql`select count(*)::int as n from owner_claims where agent_id = ${id}`))
    expect(Number(rows[0]!.n)).toBe(1)
  })

  test('10 refreshes of one token at once: one new pair, the rest 503, the family survives', async () => {
    const o = new OwnerClient(s, email())
    await o.signIn()
    const cookie = `ac_dashboard_refresh=${o.cookies.get('ac_dashboard_refresh')}`
    const rs = await Promise.all(Array.from({ length: 10 }, () => api(s, 'POST', '/dashboard/auth/refresh', { headers: { cookie } })))
    expect(rs.filter((r) => r.status === 200).length).toBe(1)
    expect(rs.filter((r) => r.status !== 200).every((r) => r.status === 503 && r.json.code === 'REFRESH_UNAVAILABLE')).toBe(true)
    expect((await o.call('GET', '/dashboard/me')).status).toBe(200)
  })

  test('pause, unpause and release racing on one claim: never a paused agent without an owner', async () => {
    for (let round = 0; round < 3; round++) {
      const o = new OwnerClient(s, email())
      await o.signIn()
      const a = await registerAgent(s)
      await o.claim(a.apiKey)
      const ops = Array.from({ length: 16 }, (_, i) =>
        i === 9
          ? o.call('DELETE', `/dashboard/agents/${a.handle}`)
          : i % 2
            ? o.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: i % 4 === 1 ? 'full' : 'send' })
            : o.call('POST', `/dashboard/agents/${a.handle}/unpause`),
      )
      const rs = await Promise.all(ops)
      expect(rs.every((r) => r.status < 500)).toBe(true)
      const me = (await a.client.getMe()) as any
      expect(me.paused_by_owner).toBe('none') // released: nobody could unpause it
      expect((await o.call('GET', '/dashboard/agents')).json.agents).toEqual([])
    }
  })

  test('4 announcements at once, one recipient per batch, worked by every worker: each agent gets each exactly once, seqs gap-free', async () => {
    const agents = await Promise.all(Array.from({ length: 6 }, () => registerAgent(s)))
    const posted = await Promise.all(
      Array.from({ length: 4 }, (_, i) => api(s, 'POST', '/v1/admin/announcements', { body: { text: `notice ${i}` }, headers: { 'x-admin-key': ADMIN_KEY } })),
    )
    expect(posted.every((p) => p.status === 201)).toBe(true)
    const ids = posted.map((p) => p.json.id as string)
    for (let i = 0; i < 600; i++) {
      const list = (await api(s, 'GET', '/v1/admin/announcements', { headers: { 'x-admin-key': ADMIN_KEY } })).json.announcements as any[]
      if (ids.every((id) => list.find((x) => x.id === id)?.fanout_done)) break
      await Bun.sleep(50)
    }
    const sql = postgres(s.databaseUrl!, { max: 1, onnotice: () => {} })
    try {
      for (const a of agents) {
        const id = await s.admin.agentId(a.handle)
        const rows = await sql`
          select m.seq, m.client_msg_id from messages m join conversations c on c.id = m.conversation_id
          where c.type = 'direct' and m.sender_id = 'agt_chatfather' and (c.agent_a = ${id} or c.agent_b = ${id}) order by m.seq`
        const mine = rows.filter((r) => ids.includes(String(r.client_msg_id).slice(4)))
        expect(mine.length).toBe(4)
        expect(new Set(mine.map((r) => r.client_msg_id)).size).toBe(4)
        expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1))
      }
    } finally {
      await sql.end()
    }
  })

  test("one agent's 20 concurrent messages to the system agent open exactly one case holding all of them", async () => {
    const a = await registerAgent(s)
    // The first message opens the conversation; the rest follow at once.
    await a.client.sendMessage({ to: 'chatfather', content: { text: 'help 0' } })
    // A cold conversation allows one message until the reply: the system agent answers first.
    const key = (await api(s, 'POST', '/internal/rotate-system-agent-key', { body: { handle: 'chatfather' }, headers: { authorization: `Bearer ${OPS}` } })).json.api_key
    expect((await api(s, 'POST', '/v1/messages', { key, body: { to: a.handle, client_msg_id: 'ack-help', content: { text: 'We are on it' } } })).status).toBe(201)
    const rs = await Promise.all(Array.from({ length: 19 }, (_, i) => a.client.sendMessage({ to: 'chatfather', content: { text: `help ${i + 1}` } })))
    expect(rs.length).toBe(19)
    const list = (await api(s, 'GET', '/internal/support-escalations?status=open&limit=200', { headers: { authorization: `Bearer ${OPS}` } })).json.escalations as any[]
    const mine = list.filter((e) => e.agent_handle === a.handle)
    expect(mine.length).toBe(1)
    for (let i = 0; i < 20; i++) expect(mine[0].body).toContain(`help ${i}`)
  })

  test('Postgres detected no deadlock in any of it', async () => {
    expect(await deadlocks(s.databaseUrl!)).toBe(before)
  })
})
