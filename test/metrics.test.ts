import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { api, backends, isSpawned, registerAgent, startTestServer, WsProbe, type Registered, type TestServer } from './harness.ts'
import { startReceiver } from './webhook-receiver.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

const TOKEN = 'metrics-test-token-0123456789'
const auth = { authorization: `Bearer ${TOKEN}` }

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The Prometheus text format, as far as these tests need it (no escapes in our label values). */
function parse(text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`unparsable metrics line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1]!] = l[2]!
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}

class Scrape {
  constructor(readonly samples: Sample[]) {}
  /** Sum of every series of `name` whose labels include `labels`. */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0)
  }
  has(name: string, labels: Record<string, string> = {}): boolean {
    return this.samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  }
}

/** A fresh connection per request, so SO_REUSEPORT spreads them over a sharded process's workers. */
async function fresh(s: TestServer, method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const res = await fetch(s.url + path, {
    method,
    headers: { ...headers, connection: 'close', ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

async function scrape(s: TestServer): Promise<Scrape> {
  const r = await fresh(s, 'GET', '/internal/metrics', auth)
  expect(r.status).toBe(200)
  expect(r.headers.get('content-type')).toContain('text/plain; version=0.0.4')
  return new Scrape(parse(r.text))
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 25_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(250)
  }
}

const send = (s: TestServer, from: Registered, body: Record<string, unknown>) =>
  fresh(s, 'POST', '/v1/messages', { authorization: `Bearer ${from.apiKey}` }, { client_msg_id: crypto.randomUUID(), content: { text: 'x' }, ...body })

describe.each(await backends())('metrics on %s', (backend) => {
  test('503 OPS_AUTH_REQUIRED when METRICS_TOKEN is unset', async () => {
    const bare = await startTestServer(backend)
    try {
      const r = await api(bare, 'GET', '/internal/metrics', { headers: auth })
      expect(r.status).toBe(503)
      expect(r.json.code).toBe('OPS_AUTH_REQUIRED')
      // An operator route: not in the agents' API document.
      const spec = (await api(bare, 'GET', '/v1/openapi.json')).json
      expect(Object.keys(spec.paths)).not.toContain('/internal/metrics')
    } finally {
      await bare.stop()
    }
  })

  describe('with a token', () => {
    let s: TestServer
    let rx: Awaited<ReturnType<typeof startReceiver>>
    let a: Registered, b: Registered, c: Registered
    let probe: WsProbe
    let before: Scrape
    let after: Scrape
    const K = 12

    beforeAll(async () => {
      rx = await startReceiver()
      s = await startTestServer(backend, { METRICS_TOKEN: TOKEN, WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_POLL_MS: '50', ACK_FLUSH_MS: '50' })
      if (isSpawned(backend)) {
        // The process answers as soon as its first worker does; numbers are whole only with both.
        await until('both workers', async () => ((await scrape(s)).sum('agentchat_shard_workers', { state: 'answered' }) === 2 ? true : undefined))
      }
    })
    afterAll(async () => {
      probe?.close()
      await s?.stop()
      rx?.stop()
    })

    test('401 OPS_AUTH_REQUIRED without a bearer or with a wrong one', async () => {
      const variants: Record<string, string>[] = [{}, { authorization: 'Bearer not-the-metrics-token-at-all' }, { authorization: TOKEN }, { authorization: `Bearer ${TOKEN}x` }]
      for (const headers of variants) {
        const r = await api(s, 'GET', '/internal/metrics', { headers })
        expect(r.status).toBe(401)
        expect(r.json.code).toBe('OPS_AUTH_REQUIRED')
        expect(r.headers.get('www-authenticate')).toContain('Bearer')
      }
    })

    test('sends, refusals, deliveries on every path, writer batches and HTTP routes', async () => {
      a = await registerAgent(s)
      b = await registerAgent(s)
      c = await registerAgent(s)
      await c.client.createWebhook({ url: `${rx.base}/ok/metrics-${backend}`, events: ['message.new'] })
      probe = await new WsProbe(s.url).hello(b.apiKey)
      before = await scrape(s)

      // Accepted: a cold direct send, delivered live to b's socket.
      const first = await a.client.sendMessage({ to: b.handle, content: { text: 'hello' } })
      await probe.until(() => probe.ofType('message.new').length === 1, 'the first frame')

      // Refused, each under its envelope code: awaiting reply, self-send, unknown recipient, and a
      // schema failure that never reaches the route.
      expect((await send(s, a, { to: b.handle })).status).toBe(403)
      expect((await send(s, a, { to: a.handle })).status).toBe(400)
      expect((await send(s, a, { to: 'nobody-here-at-all' })).status).toBe(404)
      expect((await fresh(s, 'POST', '/v1/messages', { authorization: `Bearer ${a.apiKey}` }, { to: b.handle, content: { text: 'no id' } })).status).toBe(400)

      // Sync: b's one stored envelope (the socket is in ack mode and has not acked).
      expect((await b.client.sync()).map((r) => r.id)).toEqual([first.message.id])

      // Webhook: c has no socket, only a message.new webhook.
      await a.client.sendMessage({ to: c.handle, content: { text: 'to the webhook' } })
      await rx.wait(`/ok/metrics-${backend}`, 1)

      // A group send.
      const { group } = await a.client.createGroup({ name: 'metrics' })
      await a.client.sendMessage({ conversation_id: group.id, content: { text: 'to the group' } })

      // b replies (the conversation is established), then a sends K more over fresh connections:
      // on the sharded backend they land on both workers, and so do the scrapes.
      await b.client.sendMessage({ to: a.handle, content: { text: 'reply' } })
      for (let i = 0; i < K; i++) expect((await send(s, a, { to: b.handle })).status).toBe(201)
      await probe.until(() => probe.ofType('message.new').length === 1 + K, 'every frame')
      expect((await api(s, 'GET', `/v1/messages/${first.message.conversation_id}`, { key: a.apiKey })).status).toBe(200)
      expect((await api(s, 'GET', '/v1/definitely-not-a-route')).status).toBe(404)

      after = await until('the webhook delivery counted', async () => {
        const now = await scrape(s)
        return now.sum('agentchat_deliveries_total', { path: 'webhook' }) - before.sum('agentchat_deliveries_total', { path: 'webhook' }) >= 1 ? now : undefined
      })
      const delta = (name: string, labels: Record<string, string> = {}) => after.sum(name, labels) - before.sum(name, labels)

      expect(delta('agentchat_sends_accepted_total', { kind: 'direct' })).toBe(3 + K)
      expect(delta('agentchat_sends_accepted_total', { kind: 'group' })).toBe(1)
      expect(delta('agentchat_sends_refused_total', { code: 'AWAITING_REPLY' })).toBe(1)
      expect(delta('agentchat_sends_refused_total', { code: 'VALIDATION_ERROR' })).toBe(2)
      expect(delta('agentchat_sends_refused_total', { code: 'AGENT_NOT_FOUND' })).toBe(1)
      expect(delta('agentchat_sends_refused_total')).toBe(4)
      expect(delta('agentchat_deliveries_total', { path: 'socket' })).toBe(1 + K)
      expect(delta('agentchat_deliveries_total', { path: 'sync' })).toBe(1)
      expect(delta('agentchat_deliveries_total', { path: 'webhook' })).toBe(1)
      expect(after.sum('agentchat_websockets_open')).toBe(1)

      // The group commit carried at least the reply, the K sends and the group message.
      expect(delta('agentchat_writer_batch_size_sum')).toBeGreaterThanOrEqual(K + 2)
      expect(delta('agentchat_writer_flush_seconds_count')).toBeGreaterThanOrEqual(1)
      expect(delta('agentchat_writer_flush_seconds_count')).toBe(delta('agentchat_writer_batch_size_count'))

      // HTTP durations by route template, never by raw path.
      const http = 'agentchat_http_request_duration_seconds_count'
      expect(delta(http, { route: '/v1/messages', method: 'POST', status: '201' })).toBe(4 + K)
      expect(delta(http, { route: '/v1/messages', method: 'POST', status: '403' })).toBe(1)
      expect(delta(http, { route: '/v1/messages/sync', method: 'GET', status: '200' })).toBe(1)
      expect(delta(http, { route: '/v1/messages/:conversation_id', method: 'GET', status: '200' })).toBe(1)
      expect(after.sum(http, { route: 'unmatched', status: '404' })).toBeGreaterThanOrEqual(1)
      expect(after.has('agentchat_http_request_duration_seconds_bucket', { route: '/v1/messages', le: '+Inf' })).toBe(true)
      const routes = new Set(after.samples.filter((x) => x.name === http).map((x) => x.labels.route))
      for (const r of routes) expect(r).not.toMatch(/conv_|grp_|definitely|metrics-/)

      expect(after.sum('agentchat_event_loop_lag_seconds_count')).toBeGreaterThan(0)

      if (isSpawned(backend)) {
        // Whichever worker takes the scrape, it reports the whole process.
        for (let i = 0; i < 4; i++) {
          const again = await scrape(s)
          expect(again.sum('agentchat_shard_workers', { state: 'answered' })).toBe(2)
          expect(again.sum('agentchat_shard_workers', { state: 'missing' })).toBe(0)
          expect(again.sum('agentchat_sends_accepted_total')).toBe(after.sum('agentchat_sends_accepted_total'))
          expect(again.sum('agentchat_deliveries_total', { path: 'socket' })).toBe(after.sum('agentchat_deliveries_total', { path: 'socket' }))
        }
      }
    })

    test('backlog distribution and webhook outbox from Postgres', async () => {
      // b: 1 + K stored (its socket never acked); a: b's reply; c: delivered by the webhook.
      // The seeded system agent (chatfather, an empty inbox) is an agent too: one more in every bucket.
      const want = { '0': 2, '10': 3, '100': 4, '1000': 4, '5000': 4, '10000': 4, '+Inf': 4 }
      const got = await until('the backlog gauge (cached up to 10 s)', async () => {
        const now = await scrape(s)
        const buckets = Object.fromEntries(Object.keys(want).map((le) => [le, now.sum('agentchat_agents_backlog', { le })]))
        return JSON.stringify(buckets) === JSON.stringify(want) ? now : undefined
      })
      expect(got.sum('agentchat_webhook_outbox_pending')).toBe(0)
      expect(got.sum('agentchat_webhook_dead_letters')).toBe(0)
      expect(got.has('agentchat_webhook_open_breakers')).toBe(true)
    })
  })
})
