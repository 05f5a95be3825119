import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { uniqueViolation } from '../src/db/errors.ts'
import { api, startTestServer, type TestServer } from './harness.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(60_000)

/*
 * The embedded default runs PGlite in its own worker thread (src/db/pglite-worker.ts): a long
 * statement must not stop the HTTP server, and errors, rollbacks and types must look exactly as
 * they did with PGlite in-process.
 */
describe('embedded database in a worker thread', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer('embedded')
  })
  afterAll(async () => {
    await s?.stop()
  })

  test('a long statement does not stop the HTTP server: GET / started after it finishes before it', async () => {
    const db = s.running.ctx.database
    const order: string[] = []
    const slow = db.raw.query('select pg_sleep(1.5)').then(() => order.push('statement'))
    await Bun.sleep(100) // the statement is running in the worker
    const res = await fetch(`${s.url}/`)
    order.push(`GET / ${res.status}`)
    const health = await fetch(`${s.url}/v1/health`)
    order.push(`health ${health.status}`)
    await slow
    expect(order).toEqual(['GET / 200', 'health 200', 'statement'])
  })

  test('errors keep their Postgres fields, and a failed transaction rolls back', async () => {
    const db = s.running.ctx.database
    await db.raw.query('create table if not exists t_embedded (id int primary key, v text)')
    await db.raw.query(`insert into t_embedded values (1, 'one')`)
    const err = await db.raw.query(`insert into t_embedded values (1, 'again')`).catch((e) => e)
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('23505')
    expect(uniqueViolation(err)).toBe('t_embedded_pkey')
    const syntax = await db.raw.query('selec 1').catch((e) => e)
    expect(syntax.code).toBe('42601')
    const failed = await db
      .transaction(async (q) => {
        await q.query(`insert into t_embedded values (2, 'two')`)
        await q.query(`insert into t_embedded values (1, 'dup')`)
      })
      .catch((e) => e)
    expect(failed.code).toBe('23505')
    const rows = await db.raw.query<{ id: number }>('select id from t_embedded order by id')
    expect(rows.map((r) => r.id)).toEqual([1])
    // A committed transaction is visible; queries outside it wait for it (PGlite's mutex).
    await db.transaction(async (q) => {
      await q.query(`insert into t_embedded values (3, 'three')`)
    })
    expect((await db.raw.query<{ n: number }>('select count(*)::int as n from t_embedded'))[0]!.n).toBe(2)
  })

  test('types cross the thread as the rest of the code expects', async () => {
    const db = s.running.ctx.database
    const [r] = await db.raw.query<Record<string, unknown>>(
      `select now() as ts, 42::int8 as big, 7::int as small, '{"a":[1,{"b":true}]}'::jsonb as j, true as flag, array['x','y']::text[] as arr, null::text as nothing`,
    )
    expect(r!.ts).toBeInstanceOf(Date)
    expect(Number(r!.big)).toBe(42)
    expect(r!.small).toBe(7)
    expect(r!.j).toEqual({ a: [1, { b: true }] })
    expect(r!.flag).toBe(true)
    expect(r!.arr).toEqual(['x', 'y'])
    expect(r!.nothing).toBeNull()
    // drizzle (identity parsers for timestamps rebuilt in the worker) maps rows to Dates too.
    const [agent] = await s.running.ctx.db.query.agents.findMany({ limit: 1 })
    if (agent) expect(agent.createdAt).toBeInstanceOf(Date)
  })

  test('many concurrent statements all answer, and the server still serves', async () => {
    const db = s.running.ctx.database
    const all = await Promise.all(Array.from({ length: 300 }, (_, i) => db.raw.query<{ n: number }>('select $1::int + 1 as n', [i])))
    expect(all.map((r) => r[0]!.n)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1))
    expect((await api(s, 'GET', '/v1/health')).status).toBe(200)
  })
})
