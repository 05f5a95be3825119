import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { api, backends, establishedPair, startTestServer, type TestServer } from './harness.ts'

setDefaultTimeout(120_000)

/*
 * Graceful under overload (issue 11.5): past the writer's bounds a send is refused at once with
 * 503 SERVICE_UNAVAILABLE and Retry-After instead of queueing behind seconds of work. The bounds
 * are set tiny here so a burst crosses them on any machine; nothing is timed. What must hold:
 * some sends commit and some are refused, every 201 is stored and no refused send is, the
 * refusal is the flat envelope with Retry-After, health answers meanwhile, and the server
 * accepts sends again once the burst is gone.
 */

const PAIRS = 8
const PER_SENDER = 25

async function burst(s: TestServer, pairs: Awaited<ReturnType<typeof establishedPair>>[], tag: string) {
  const sends = pairs.flatMap((p, i) =>
    Array.from({ length: PER_SENDER }, (_, k) =>
      api(s, 'POST', '/v1/messages', { key: p.a.apiKey, body: { to: p.b.handle, client_msg_id: `${tag}-${i}-${k}`, content: { text: `burst ${k}` } } }).then((r) => ({ ...r, id: `${tag}-${i}-${k}` })),
    ),
  )
  const health = api(s, 'GET', '/v1/health')
  const results = await Promise.all(sends)
  return { results, health: await health }
}

async function storedIds(s: TestServer, tag: string): Promise<Set<string>> {
  const rows = await s.admin.sql<{ client_msg_id: string }>(sql`select client_msg_id from messages where client_msg_id like ${tag + '-%'}`)
  return new Set(rows.map((r) => r.client_msg_id))
}

describe.each(await backends())('overload on %s', (backend) => {
  describe.each([
    ['the queue bound', { WRITER_MAX_QUEUE: '3', WRITER_MAX_WAIT_MS: '60000', WRITER_CONCURRENCY: '1' }],
    ['the wait bound', { WRITER_MAX_QUEUE: '100000', WRITER_MAX_WAIT_MS: '1', WRITER_CONCURRENCY: '1' }],
  ] as const)('%s', (_name, env) => {
    let s: TestServer
    let pairs: Awaited<ReturnType<typeof establishedPair>>[]
    beforeAll(async () => {
      s = await startTestServer(backend, env)
      pairs = []
      for (let i = 0; i < PAIRS; i++) pairs.push(await establishedPair(s))
    })
    afterAll(async () => {
      await s?.stop()
    })

    test('a burst past the bound: 201s stored, the rest 503 with Retry-After and not stored; health answers; sends work again after', async () => {
      const tag = `ovl${Date.now().toString(36)}`
      const { results, health } = await burst(s, pairs, tag)
      expect(health.status).toBe(200)
      const ok = results.filter((r) => r.status === 201)
      const refused = results.filter((r) => r.status === 503)
      // Nothing else: no 500, no timeout, no rate limit (25 per sender is under 60/s).
      expect(results.filter((r) => r.status !== 201 && r.status !== 503).map((r) => [r.status, r.json?.code])).toEqual([])
      expect(ok.length).toBeGreaterThan(0)
      expect(refused.length).toBeGreaterThan(0)
      for (const r of refused) {
        expect(r.json).toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: expect.any(String), details: { retry_after_ms: 1000 } })
        expect(r.headers.get('retry-after')).toBe('1')
      }
      const stored = await storedIds(s, tag)
      expect([...stored].sort()).toEqual(ok.map((r) => r.id).sort())

      // The burst is over: the same sends retried one at a time all commit, the refused ones now.
      for (const r of refused) {
        const [i, k] = r.id.split('-').slice(1).map(Number) as [number, number]
        const p = pairs[i]!
        const again = await api(s, 'POST', '/v1/messages', { key: p.a.apiKey, body: { to: p.b.handle, client_msg_id: r.id, content: { text: `burst ${k}` } } })
        expect(again.status).toBe(201)
      }
      expect((await storedIds(s, tag)).size).toBe(PAIRS * PER_SENDER)
    })
  })
})
