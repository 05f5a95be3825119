import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { api, backends, registerAgent, startTestServer, type Registered, type TestServer } from './harness.ts'
import {
  casesFor,
  curlFor,
  mulberry32,
  RequestTimeout,
  rawRequest,
  routesFromOpenApi,
  showBytes,
  shuffle,
  truncate,
  type FuzzCase,
  type Fixtures,
  type OpenApiDoc,
  type RawResponse,
  type Route,
} from './fuzz-cases.ts'

/*
 * Bounded, deterministic fuzzing of every route in the server's own OpenAPI document
 * (GET /v1/openapi.json). For each route, test/fuzz-cases.ts derives bad path segments, query
 * values and JSON bodies from the route's parameters and request schema, samples at most
 * FUZZ_CAP of them per route (class-balanced, fixed seed), and each case is sent unauthenticated
 * and with a registered agent's bearer key (secured routes), byte-for-byte over a raw socket.
 *
 * Asserted: no status ≥ 500; every non-2xx body is the flat envelope {code, message, details?};
 * every request completes within 10 s; afterwards the server is healthy and a direct message
 * still sends and reads back. All failures are collected and reported at once, each with the
 * route, the input, the status, the body and a curl command line.
 *
 * FUZZ_SEED and FUZZ_CAP override the seed and the per-route cap for local exploration.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_ac01)
const CAP = Number(process.env.FUZZ_CAP ?? 120)
const CONCURRENCY = 8
const REQUEST_TIMEOUT_MS = 10_000
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * Routes whose successful call changes the account they act on: they run last, with a throwaway
 * agent, in this order (the account deletion at the very end, odd-path cases before the ones
 * that can succeed).
 */
const LATE = ['POST /v1/agents/{handle}/rotate-key', 'POST /v1/agents/{handle}/rotate-key/verify', 'DELETE /v1/agents/{handle}']

interface World {
  F: Registered // the fuzzing agent
  P: Registered // its established peer (conversation C)
  B: Registered // target of block/report
  Q: Registered // peer of the conversation the fuzzer may delete (C_del)
  T: Registered // throwaway for rotate-key and account deletion
  C: string
  C_del: string
  M_read: string
  M_del: string
  G: string
  G_rm: string
  G_del: string
  G_leave: string
  I_acc: string
  I_dec: string
}

interface Sent {
  c: FuzzCase
  auth: 'none' | 'key' | 'header'
  headers: Record<string, string>
}

interface Failure {
  route: string
  cls: string
  input: string
  auth: string
  problem: string
  status: number | string
  body: string
  curl: string
}

async function ok(s: TestServer, method: string, path: string, key: string, body?: unknown) {
  const r = await api(s, method, path, { key, body })
  if (r.status >= 300) throw new Error(`fixture ${method} ${path} → ${r.status} ${r.text}`)
  return r.json
}

async function buildWorld(s: TestServer): Promise<World> {
  const [F, P, B, Q, T] = await Promise.all([0, 1, 2, 3, 4].map(() => registerAgent(s)))
  const send = (from: Registered, to: string, text: string) =>
    ok(s, 'POST', '/v1/messages', from.apiKey, { to, client_msg_id: crypto.randomUUID(), content: { text } }).then((j) => j as { id: string; conversation_id: string })
  const first = await send(F!, P!.handle, 'hi')
  const reply = await send(P!, F!.handle, 'hello back')
  await send(F!, Q!.handle, 'hi q')
  const qReply = await send(Q!, F!.handle, 'hello f')
  // A message nothing in the fuzz can acknowledge, read or hide: F's inbox is never empty, so
  // GET /v1/messages/stream answers at once instead of holding each case for its timeout.
  await send(await registerAgent(s), F!.handle, 'stays stored')
  const group = async (owner: Registered, members: string[]) =>
    ((await ok(s, 'POST', '/v1/groups', owner.apiKey, { name: 'fuzz group', member_handles: members })).group as { id: string }).id
  const G = await group(F!, [P!.handle])
  const G_rm = await group(F!, [P!.handle])
  const G_del = await group(F!, [])
  const G_leave = await group(F!, [P!.handle])
  const G2 = await group(P!, [F!.handle])
  const G3 = await group(P!, [F!.handle])
  const invitesOf = async (who: Registered) => (await ok(s, 'GET', '/v1/groups/invites', who.apiKey)) as { id: string; group_id: string }[]
  for (const inv of await invitesOf(P!)) await ok(s, 'POST', `/v1/groups/invites/${inv.id}/accept`, P!.apiKey)
  const mine = await invitesOf(F!)
  const inviteTo = (g: string) => mine.find((i) => i.group_id === g)!.id
  return {
    F: F!,
    P: P!,
    B: B!,
    Q: Q!,
    T: T!,
    C: first.conversation_id,
    C_del: qReply.conversation_id,
    M_read: reply.id,
    M_del: first.id,
    G,
    G_rm,
    G_del,
    G_leave,
    I_acc: inviteTo(G2),
    I_dec: inviteTo(G3),
  }
}

function fixtures(w: World): Fixtures {
  const onT = new Set(LATE)
  return {
    pathValue(route: Route, param: string) {
      const k = route.key
      if (param === 'handle') {
        if (onT.has(k)) return w.T.handle
        if (k === 'PATCH /v1/agents/{handle}') return w.F.handle
        if (k.startsWith('POST /v1/contacts/{handle}/') || k.startsWith('DELETE /v1/contacts/{handle}/')) return w.B.handle
        return w.P.handle
      }
      if (k === 'POST /v1/messages/{id}/read') return w.M_read
      if (k === 'DELETE /v1/messages/{id}') return w.M_del
      if (k === 'DELETE /v1/conversations/{id}') return w.C_del
      if (k === 'POST /v1/groups/invites/{id}/accept') return w.I_acc
      if (k === 'DELETE /v1/groups/invites/{id}') return w.I_dec
      if (route.template.startsWith('/v1/groups/')) {
        if (k === 'DELETE /v1/groups/{id}') return w.G_del
        if (k === 'POST /v1/groups/{id}/leave') return w.G_leave
        if (k === 'DELETE /v1/groups/{id}/members/{handle}') return w.G_rm
        return w.G
      }
      return w.C // conversation ids: /v1/messages/{conversation_id}, /v1/conversations/{id}/…, /v1/mutes/conversation/{id}
    },
    baseBody(route: Route) {
      return route.key === 'POST /v1/messages' ? { to: w.P.handle } : {}
    },
    fieldValue(route: Route, name: string, uniq: string) {
      if (route.template === '/v1/register') return undefined // fresh email and handle from the schema
      switch (name) {
        case 'handle':
        case 'to':
        case 'target_handle':
          return w.P.handle
        case 'handles':
          return [w.P.handle]
        case 'conversation_id':
        case 'target_id':
          return w.C
        case 'client_msg_id':
          return `fz-${uniq}`
        case 'content':
          return { text: 'fuzz' }
        case 'pending_id':
          return 'pnd_fuzzfuzzfuzzfuzz'
        case 'code':
          return '123456'
      }
      return undefined
    },
  }
}

/** Why a response breaks the contract, or null. */
function problemOf(res: RawResponse): string | null {
  if (!Number.isInteger(res.status)) return 'unparseable status line'
  if (res.status >= 500) return `status ${res.status} (≥ 500)`
  if (res.status >= 200 && res.status < 300) return null
  const text = new TextDecoder().decode(res.body)
  if (text.trim() === '') return 'non-2xx with an empty body'
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return `non-2xx body is not JSON (content-type ${res.headers['content-type'] ?? 'none'})`
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return 'non-2xx body is not a JSON object'
  const e = json as Record<string, unknown>
  if (typeof e.code !== 'string' || e.code === '') return 'envelope: `code` is not a non-empty string'
  if (typeof e.message !== 'string') return 'envelope: `message` is not a string'
  if ('details' in e && (e.details === null || typeof e.details !== 'object' || Array.isArray(e.details))) return 'envelope: `details` present but not an object'
  if (!/json/i.test(res.headers['content-type'] ?? '')) return `envelope sent with content-type ${res.headers['content-type'] ?? 'none'}`
  return null
}

async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!)
    }),
  )
}

function report(backend: string, failures: Failure[]): string {
  const groups = new Map<string, number>()
  for (const f of failures) {
    const k = `${f.route} | ${f.cls} | ${f.problem}`
    groups.set(k, (groups.get(k) ?? 0) + 1)
  }
  const lines = [`${failures.length} fuzz failure(s) on ${backend}, ${groups.size} distinct (route | input class | problem):`]
  for (const [k, n] of [...groups].sort()) lines.push(`  ${n} × ${k}`)
  lines.push('', 'Each failure:')
  for (const f of failures) {
    lines.push(`- ${f.route} [${f.cls}] ${f.input} (auth: ${f.auth})`)
    lines.push(`    → ${f.status}: ${f.problem}; body: ${f.body}`)
    lines.push(`    ${f.curl}`)
  }
  return lines.join('\n')
}

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(120_000)

const OPERATOR_ENV = { ADMIN_KEY: 'fuzz-admin-key-0123456789', OPS_ADMIN_TOKEN: 'fuzz-ops-token-0123456789', METRICS_TOKEN: 'fuzz-metrics-token-0123456789' }
// The per-agent API budget off: thousands of requests from two agents would mostly meet 429s.
const FUZZ_ENV = { ...OPERATOR_ENV, API_RATE_LIMIT_PER_MIN: '0' }

/** Operator routes take their own credential instead of an agent key. */
function operatorHeaders(template: string): Record<string, string> | null {
  if (template.startsWith('/v1/admin/')) return { 'x-admin-key': OPERATOR_ENV.ADMIN_KEY }
  if (template === '/internal/metrics') return { authorization: `Bearer ${OPERATOR_ENV.METRICS_TOKEN}` }
  if (template.startsWith('/internal/')) return { authorization: `Bearer ${OPERATOR_ENV.OPS_ADMIN_TOKEN}`, 'x-ops-operator': 'fuzz' }
  return null
}

const BACKENDS = (await backends()).filter((b) => b === 'embedded' || b === 'postgres')

describe.each(BACKENDS)('fuzz from the OpenAPI document on %s', (backend) => {
  let s: TestServer
  let w: World
  let routes: Route[] = []

  beforeAll(async () => {
    // Operator routes configured, so they answer 401 to strangers (503 is for "not configured") and
    // the fuzz also reaches their handlers with the right credentials.
    s = await startTestServer(backend, FUZZ_ENV)
    w = await buildWorld(s)
    const doc = (await (await fetch(`${s.url}/v1/openapi.json`)).json()) as OpenApiDoc
    routes = routesFromOpenApi(doc)
  }, 120_000)

  afterAll(async () => {
    await s?.stop()
  }, 120_000)

  test(
    'every route: no 5xx, only flat error envelopes, no hang',
    async () => {
      expect(routes.length).toBeGreaterThan(40) // the document lists the whole API
      const fx = fixtures(w)
      const keyFor = (r: Route) => (LATE.includes(r.key) ? w.T.apiKey : w.F.apiKey)
      const sends = (c: FuzzCase, i: number, routeIndex: number): Sent[] => {
        const out: Sent[] = []
        if (c.authOverride !== undefined && c.authOverride !== null) return [{ c, auth: 'header', headers: { ...c.headers, authorization: c.authOverride } }]
        out.push({ c, auth: 'none', headers: { ...c.headers } })
        const operator = operatorHeaders(c.route.template)
        if (operator) out.push({ c, auth: 'key', headers: { ...c.headers, ...operator } })
        if (c.route.secured) {
          const headers: Record<string, string> = { ...c.headers, authorization: `Bearer ${keyFor(c.route)}` }
          if (MUTATING.has(c.route.method) && i % 3 === 0 && !headers['idempotency-key']) headers['idempotency-key'] = `fz${SEED.toString(36)}r${routeIndex}c${i}`
          out.push({ c, auth: 'key', headers })
        }
        return out
      }

      const main: Sent[] = []
      const late: Sent[][] = LATE.map(() => [])
      let caseCount = 0
      routes.forEach((route, ri) => {
        let cases = casesFor(route, fx, ri, { seed: SEED, cap: CAP })
        caseCount += cases.length
        const li = LATE.indexOf(route.key)
        if (li >= 0) {
          // Odd paths first: the cases that can succeed (and delete the agent) go last.
          cases = [...cases.filter((c) => c.mutatesPath), ...cases.filter((c) => !c.mutatesPath)]
          late[li]!.push(...cases.flatMap((c, i) => sends(c, i, ri)))
        } else main.push(...cases.flatMap((c, i) => sends(c, i, ri)))
      })
      // Interleave routes (deterministically) so per-agent rate windows are not hit by one route's burst.
      const mainOrder = shuffle(main, mulberry32(SEED))

      const failures: Failure[] = []
      const statuses = new Map<number, number>()
      const slowest: { ms: number; what: string }[] = []
      let sent = 0
      const run = async ({ c, auth, headers }: Sent) => {
        sent++
        const fail = (problem: string, status: number | string, body: string) =>
          failures.push({
            route: c.route.key,
            cls: c.cls,
            input: c.input,
            auth,
            problem,
            status,
            body,
            curl: curlFor('$BASE', c.route.method, c.target, auth === 'key' ? { ...headers, authorization: 'Bearer $KEY' } : headers, c.body),
          })
        try {
          const res = await rawRequest(s.url, c.route.method, c.target, headers, c.body, REQUEST_TIMEOUT_MS)
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
          slowest.push({ ms: res.ms, what: `${c.route.key} [${c.cls}] ${truncate(c.input, 70)} (${auth}) → ${res.status}` })
          if (slowest.length > 20) slowest.sort((a, b) => b.ms - a.ms).splice(5)
          const problem = problemOf(res)
          if (problem) fail(problem, res.status, showBytes(res.body, 300))
        } catch (err) {
          if (err instanceof RequestTimeout) fail(`hang: ${err.message}`, 'timeout', '')
          else fail(`transport error: ${truncate(String((err as Error)?.message ?? err), 200)}`, 'error', '')
        }
      }

      const started = performance.now()
      await pool(mainOrder, CONCURRENCY, run)
      for (const [i, batch] of late.entries()) await pool(batch, LATE[i] === 'DELETE /v1/agents/{handle}' ? 1 : CONCURRENCY, run)
      const elapsed = (performance.now() - started) / 1000

      const hist = [...statuses].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}×${v}`).join(' ')
      console.log(
        `[fuzz ${backend}] seed=${SEED} cap=${CAP}: ${routes.length} routes, ${caseCount} cases, ${sent} requests in ${elapsed.toFixed(1)} s; statuses ${hist}; ${failures.length} failure(s)`,
      )
      console.log(
        `[fuzz ${backend}] slowest: ${slowest
          .sort((a, b) => b.ms - a.ms)
          .slice(0, 5)
          .map((x) => `${Math.round(x.ms)} ms ${x.what}`)
          .join('; ')}`,
      )
      if (failures.length > 0) {
        throw new Error(report(backend, failures))
      }
      expect(failures).toEqual([])
    },
    180_000,
  )

  test(
    'afterwards the server is healthy and a direct message still sends and reads back',
    async () => {
      const health = await fetch(`${s.url}/v1/health`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
      expect(health.status).toBe(200)
      const [x, y] = await Promise.all([registerAgent(s), registerAgent(s)])
      const sendRes = await api(s, 'POST', '/v1/messages', {
        key: x!.apiKey,
        body: { to: y!.handle, client_msg_id: crypto.randomUUID(), content: { text: 'still alive after fuzzing' } },
      })
      expect(sendRes.status).toBe(201)
      const msg = sendRes.json as { id: string; conversation_id: string }
      const history = await api(s, 'GET', `/v1/messages/${msg.conversation_id}`, { key: y!.apiKey })
      expect(history.status).toBe(200)
      expect(JSON.stringify(history.json)).toContain(msg.id)
      expect(JSON.stringify(history.json)).toContain('still alive after fuzzing')
      // The fuzzing agent itself still authenticates.
      expect((await api(s, 'GET', '/v1/agents/me', { key: w.F.apiKey })).status).toBe(200)
    },
    120_000,
  )
})
