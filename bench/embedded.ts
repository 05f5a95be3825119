/**
 * `bun run bench --embedded` — the embedded default (PGlite) under a write flood, beside Postgres
 * in the same run: does the server keep answering while the embedded database writes?
 *
 * For each backend: start `bun src/main.ts` as its own process (fresh DATA_DIR, or a fresh
 * Postgres database), register agents through the API (codes read from MAIL_DIR), establish
 * pairs, connect every receiver on a WebSocket with `ack`, then
 *   1. the flood: 8 senders × 50 sends/s × ~30 KB, while GET /v1/health and GET / are probed every
 *      20 ms — accepted/s, send p50/p99, health and root p50/p99/max;
 *   2. rising open-loop rates of small sends — accepted/s, send and delivery percentiles, health p99;
 *   3. (embedded) the restart time on the existing data: stop, start, time to a 200 from /v1/health.
 *
 *   bun run bench --embedded [--seconds 15] [--rates 250,500,1000,2000] [--server-dir /path] [--name embedded]
 *
 * `--server-dir` runs another checkout of the server (e.g. the commit before a change) with this
 * same client, so before and after are measured the same way.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import postgres from 'postgres'
import { freePort, spawnServer } from '../load/spawn-server.ts'
import { parseArgs, pct, round, rssOf } from './lib.ts'

const args = parseArgs()
const FLOOD_SECONDS = Number(args.get('seconds') ?? 15)
const RATES = (args.get('rates') ?? '250,500,1000,2000').split(',').map(Number)
const SERVER_DIR = args.get('server-dir') || undefined
const NAME = args.get('name') || 'embedded'
const SKIP_POSTGRES = args.has('no-postgres')
const ADMIN = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const SENDERS = 8
const PAIRS = 40

interface Agent {
  handle: string
  key: string
}

async function register(base: string, mailDir: string, handle: string): Promise<Agent> {
  const email = `${handle}@bench.test`
  const r = await fetch(`${base}/v1/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, handle }) })
  const { pending_id } = (await r.json()) as { pending_id: string }
  for (let i = 0; i < 200; i++) {
    for (const f of readdirSync(mailDir).filter((x) => x.endsWith('.json'))) {
      const m = JSON.parse(readFileSync(join(mailDir, f), 'utf8')) as { to: string; code: string }
      if (m.to !== email) continue
      const v = await fetch(`${base}/v1/register/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pending_id, code: m.code }) })
      return { handle, key: ((await v.json()) as { api_key: string }).api_key }
    }
    await Bun.sleep(25)
  }
  throw new Error(`no code for ${email}`)
}

const post = (base: string, key: string, body: unknown) =>
  fetch(`${base}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) })

/** Probes a GET route every `everyMs` until stopped; latencies in ms. */
function probe(url: string, everyMs: number) {
  const samples: number[] = []
  let errors = 0
  let running = true
  const loop = (async () => {
    while (running) {
      const t0 = performance.now()
      try {
        const r = await fetch(url)
        await r.arrayBuffer()
        if (!r.ok) errors++
      } catch {
        errors++
      }
      samples.push(performance.now() - t0)
      await Bun.sleep(everyMs)
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      samples.sort((a, b) => a - b)
      return { p50: round(pct(samples, 50)), p99: round(pct(samples, 99)), max: round(samples[samples.length - 1] ?? NaN), errors, n: samples.length }
    },
  }
}

interface Setup {
  label: string
  env: Record<string, string>
  cleanup: () => Promise<void>
}

async function run(setup: Setup) {
  const mailDir = setup.env.MAIL_DIR!
  const port = freePort()
  let server: Subprocess = (await spawnServer(setup.env, { port, cwd: SERVER_DIR })).proc
  const base = `http://127.0.0.1:${port}`
  const runId = Math.random().toString(36).slice(2, 7)
  try {
    const agents: Agent[] = []
    for (let i = 0; i < PAIRS * 2; i++) agents.push(await register(base, mailDir, `be-${runId}-${i}`))
    const pairs = Array.from({ length: PAIRS }, (_, i) => ({ a: agents[2 * i]!, b: agents[2 * i + 1]! }))
    for (const p of pairs) {
      await post(base, p.a.key, { to: p.b.handle, client_msg_id: `open-${p.a.handle}`, content: { text: 'hi' } })
      await post(base, p.b.key, { to: p.a.handle, client_msg_id: `open-${p.b.handle}`, content: { text: 'hello' } })
    }
    const sentAt = new Map<string, number>()
    let deliveries: number[] = []
    const sockets: WebSocket[] = []
    await Promise.all(
      pairs.map(
        (p) =>
          new Promise<void>((resolve, reject) => {
            const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`)
            sockets.push(ws)
            ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', api_key: p.b.key, capabilities: ['ack'] }))
            ws.onerror = () => reject(new Error('ws error'))
            ws.onmessage = (e) => {
              const f = JSON.parse(String(e.data))
              if (f.type === 'hello.ok') return resolve()
              if (f.type !== 'message.new') return
              const t0 = sentAt.get(f.payload.client_msg_id)
              if (t0 !== undefined) {
                deliveries.push(performance.now() - t0)
                sentAt.delete(f.payload.client_msg_id)
              }
              ws.send(JSON.stringify({ type: 'ack', message_id: f.payload.id }))
            }
          }),
      ),
    )

    /** Open-loop sends at `rate`/s for `seconds`, `text` per message, from the first `senders` pairs. */
    const level = async (rate: number, seconds: number, text: string, senders: number) => {
      const latencies: number[] = []
      let accepted = 0
      let errors = 0
      let inFlight = 0
      let n = 0
      deliveries = []
      const health = probe(`${base}/v1/health`, 20)
      const root = probe(`${base}/`, 20)
      const started = performance.now()
      let issued = 0
      while (performance.now() - started < seconds * 1000) {
        const due = Math.floor(((performance.now() - started) / 1000) * rate) - issued
        for (let i = 0; i < due; i++) {
          issued++
          const p = pairs[n % senders]!
          const id = `${NAME}-${runId}-${rate}-${n++}`
          const t0 = performance.now()
          sentAt.set(id, t0)
          inFlight++
          post(base, p.a.key, { to: p.b.handle, client_msg_id: id, content: { text } })
            .then(async (r) => {
              await r.arrayBuffer()
              latencies.push(performance.now() - t0)
              if (r.status === 201) accepted++
              else errors++
            })
            .catch(() => errors++)
            .finally(() => inFlight--)
        }
        await Bun.sleep(2)
      }
      const drainUntil = performance.now() + 10_000
      while (inFlight > 0 && performance.now() < drainUntil) await Bun.sleep(20)
      const [h, r] = [await health.stop(), await root.stop()]
      sentAt.clear()
      latencies.sort((x, y) => x - y)
      deliveries.sort((x, y) => x - y)
      return {
        offered_per_s: rate,
        accepted_per_s: round(accepted / seconds),
        send_p50_ms: round(pct(latencies, 50)),
        send_p99_ms: round(pct(latencies, 99)),
        delivery_p50_ms: round(pct(deliveries, 50)),
        delivery_p99_ms: round(pct(deliveries, 99)),
        errors,
        health_p50_ms: h.p50,
        health_p99_ms: h.p99,
        health_max_ms: h.max,
        root_p50_ms: r.p50,
        root_p99_ms: r.p99,
        root_max_ms: r.max,
        server_rss_mb: round((await rssOf(server.pid)) / 1048576),
      }
    }

    const big = 'x'.repeat(30_000)
    const flood = await level(SENDERS * 50, FLOOD_SECONDS, big, SENDERS)
    console.log(`${setup.label} flood`, JSON.stringify(flood))
    const levels = []
    for (const rate of RATES) {
      const l = await level(rate, 5, 'benchmark message', PAIRS)
      console.log(`${setup.label} level`, JSON.stringify(l))
      levels.push(l)
      if (l.accepted_per_s < rate * 0.8) break
      await Bun.sleep(1000)
    }
    for (const ws of sockets) ws.close()

    let restart_ms: number | null = null
    if (setup.env.DATABASE_URL === undefined) {
      server.kill('SIGTERM')
      await server.exited
      const t0 = performance.now()
      server = (await spawnServer(setup.env, { port, cwd: SERVER_DIR, quiet: true })).proc
      for (;;) {
        const ok = await fetch(`${base}/v1/health`).then((r) => r.ok).catch(() => false)
        if (ok) break
        await Bun.sleep(20)
      }
      restart_ms = round(performance.now() - t0)
      console.log(`${setup.label} restart on existing data: ${restart_ms} ms to a healthy /v1/health`)
    }
    return { setup: setup.label, flood, levels, restart_ms }
  } finally {
    server.kill('SIGTERM')
    await server.exited
    await setup.cleanup()
  }
}

function embeddedSetup(): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'ac-bench-emb-'))
  return {
    label: 'embedded (PGlite)',
    env: { DATA_DIR: dir, MAIL_DIR: join(dir, 'mail'), LOG_LEVEL: 'warn', IP_RATE_LIMITS: 'off' },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  }
}

async function postgresSetup(): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'ac-bench-pg-'))
  const name = `ac_bench_emb_${Date.now().toString(36)}`
  const admin = postgres(ADMIN, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE ${name}`)
  await admin.end()
  return {
    label: 'Postgres',
    env: { DATA_DIR: dir, MAIL_DIR: join(dir, 'mail'), DATABASE_URL: ADMIN.replace(/\/[^/]*$/, `/${name}`), LOG_LEVEL: 'warn', IP_RATE_LIMITS: 'off' },
    cleanup: async () => {
      const a = postgres(ADMIN, { max: 1, onnotice: () => {} })
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await a.end()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export async function benchEmbedded(): Promise<void> {
  const runs = [await run(embeddedSetup())]
  if (!SKIP_POSTGRES) runs.push(await run(await postgresSetup()))
  console.log(`\n| backend | flood accepted/s | send p50 / p99 ms | health p50 / p99 / max ms | GET / p50 / p99 / max ms | restart ms |`)
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |')
  for (const r of runs) {
    const f = r.flood
    console.log(`| ${r.setup} | ${f.accepted_per_s} of ${f.offered_per_s} | ${f.send_p50_ms} / ${f.send_p99_ms} | ${f.health_p50_ms} / ${f.health_p99_ms} / ${f.health_max_ms} | ${f.root_p50_ms} / ${f.root_p99_ms} / ${f.root_max_ms} | ${r.restart_ms ?? '—'} |`)
  }
  console.log(`\n| backend | offered/s | accepted/s | send p50 | p99 | delivery p50 | p99 | errors | health p99 ms |`)
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of runs) {
    for (const l of r.levels) {
      console.log(`| ${r.setup} | ${l.offered_per_s} | ${l.accepted_per_s} | ${l.send_p50_ms} | ${l.send_p99_ms} | ${l.delivery_p50_ms} | ${l.delivery_p99_ms} | ${l.errors} | ${l.health_p99_ms} |`)
    }
  }
  const result = {
    name: NAME,
    at: new Date().toISOString(),
    server_dir: SERVER_DIR ?? 'this checkout',
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 1073741824), bun: Bun.version },
    config: { pairs: PAIRS, flood: `${SENDERS} senders × 50/s × 30 KB for ${FLOOD_SECONDS} s`, probes: 'GET /v1/health and GET / every 20 ms' },
    runs,
  }
  mkdirSync(join(import.meta.dir, 'results'), { recursive: true })
  const file = join(import.meta.dir, 'results', `${NAME}-${result.at.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(result, null, 2))
  console.log(`\nwrote ${file}`)
}
