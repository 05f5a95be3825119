/**
 * `bun run bench` — direct-send throughput and latency against a real server on Postgres.
 *
 * Starts the server (a separate `bun src/main.ts` process on a fresh Postgres database), seeds
 * agent pairs with established conversations, connects every receiver over the WebSocket with the
 * `ack` capability, then offers direct sends open-loop at rising rates. For each rate it reports
 * accepted sends/s, send latency p50/p95/p99, send→WebSocket delivery latency p50/p99, errors and
 * the server's RSS, and writes everything to bench/results/<name>-<timestamp>.json.
 *
 *   bun run bench [--rates 2000,4000,...] [--seconds 5] [--pairs 500] [--name direct]
 *   bun run bench --shards 2 [--processes 2]     worker threads per process / processes (with Redis)
 *   bun run bench --compare                      1 worker, 2 workers and 2 processes, side by side
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import postgres from 'postgres'
import { seedAgents, seedPairs, type SeededPair } from '../load/seed-lib.ts'
import { freePort, spawnServer } from '../load/spawn-server.ts'
import { parseArgs, pct, round, rssOf } from './lib.ts'

const args = parseArgs()
if (args.has('embedded')) {
  // The embedded default under a write flood, beside Postgres (bench/embedded.ts).
  const { benchEmbedded } = await import('./embedded.ts')
  await benchEmbedded()
  process.exit(0)
}
const RATES = (args.get('rates') ?? '1000,2500,5000,7500,10000,12500,15000').split(',').map(Number)
const SECONDS = Number(args.get('seconds') ?? 5)
const PAIRS = Number(args.get('pairs') ?? 500)
const NAME = args.get('name') ?? 'direct'
const SHARDS = Number(args.get('shards') ?? 1)
const PROCESSES = Number(args.get('processes') ?? 1)
const COMPARE = args.has('compare')
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/11'
const ADMIN = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const MAX_IN_FLIGHT = 4000
/** --no-ack 1: receivers do not ack (diagnostic: isolates the cost of delivery-state updates). */
const NO_ACK = args.get('no-ack') === '1'



async function startServer(databaseUrl: string, port: number, extra: Record<string, string>): Promise<Subprocess> {
  // BENCH_SERVER_FLAGS passes Bun flags to the server, e.g. "--cpu-prof-md --cpu-prof-dir=/tmp/prof".
  const flags = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean)
  const env = { DATABASE_URL: databaseUrl, DATABASE_POOL: '20', DATA_DIR: '/tmp/ac-bench-data', ...extra }
  return (await spawnServer(env, { port, flags })).proc
}

interface Level {
  target_rate: number
  offered: number
  accepted_per_s: number
  send_p50_ms: number
  send_p95_ms: number
  send_p99_ms: number
  delivery_p50_ms: number
  delivery_p99_ms: number
  delivered: number
  errors: number
  rejected_429: number
  server_rss_mb: number
}

interface Setup {
  label: string
  shards: number
  processes: number
  redis: boolean
}

async function main(setup: Setup): Promise<{ levels: Level[]; sustained: number }> {
  const dbName = `ac_bench_${Date.now().toString(36)}`
  const admin = postgres(ADMIN, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE ${dbName}`)
  await admin.end()
  const databaseUrl = ADMIN.replace(/\/[^/]*$/, `/${dbName}`)
  if (process.env.BENCH_PG_STATS) {
    const d = postgres(databaseUrl, { max: 1, onnotice: () => {} })
    await d.unsafe('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
    await d.unsafe('SELECT pg_stat_statements_reset()')
    await d.end()
  }
  if (setup.redis) {
    const { default: Redis } = await import('ioredis')
    const r = new Redis(REDIS_URL)
    await r.flushdb()
    r.disconnect()
  }
  const extra: Record<string, string> = { SHARDS: String(setup.shards), ...(setup.redis ? { REDIS_URL } : {}) }
  const servers: Subprocess[] = []
  const bases: string[] = []
  for (let i = 0; i < setup.processes; i++) {
    const port = freePort()
    servers.push(await startServer(databaseUrl, port, extra))
    bases.push(`http://127.0.0.1:${port}`)
  }
  let pairs: SeededPair[] = []
  const sockets: WebSocket[] = []
  try {
    const agents = await seedAgents(databaseUrl, PAIRS * 2, 'bench')
    pairs = await seedPairs(databaseUrl, agents)
    console.log(`seeded ${pairs.length} established pairs; connecting ${pairs.length} receivers`)

    const sentAt = new Map<string, number>()
    let deliveries: number[] = []
    let delivered = 0
    await Promise.all(
      pairs.map(
        (p) =>
          new Promise<void>((resolve, reject) => {
            // Receivers spread over the processes; senders below alternate, so most messages cross.
            const ws = new WebSocket(`${bases[sockets.length % bases.length]!.replace('http', 'ws')}/v1/ws`)
            sockets.push(ws)
            ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', api_key: p.b.apiKey, capabilities: ['ack'] }))
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
              delivered++
              if (!NO_ACK) ws.send(JSON.stringify({ type: 'ack', message_id: f.payload.id }))
            }
          }),
      ),
    )

    const levels: Level[] = []
    let seq = 0
    for (const rate of RATES) {
      const latencies: number[] = []
      let errors = 0
      let rejected = 0
      let accepted = 0
      let offered = 0
      let inFlight = 0
      deliveries = []
      delivered = 0
      const rssSamples: number[] = []
      const send = (p: SeededPair, measure: boolean) => {
        const id = `b${seq++}`
        const t0 = performance.now()
        if (measure) sentAt.set(id, t0)
        inFlight++
        fetch(`${bases[seq % bases.length]}/v1/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${p.a.apiKey}` },
          body: JSON.stringify({ to: p.b.handle, client_msg_id: id, content: { text: 'benchmark message' } }),
        })
          .then(async (r) => {
            await r.arrayBuffer()
            if (!measure) return
            latencies.push(performance.now() - t0)
            if (r.status === 201) accepted++
            else if (r.status === 429) rejected++
            else errors++
          })
          .catch(() => {
            if (measure) errors++
          })
          .finally(() => inFlight--)
      }
      // Warm up for one second at the target rate, then measure.
      for (const [phase, seconds] of [['warm', 1], ['measure', SECONDS]] as const) {
        const measure = phase === 'measure'
        const started = performance.now()
        let issued = 0
        let pi = 0
        const rssTimer = measure
          ? setInterval(async () => rssSamples.push((await Promise.all(servers.map((p) => rssOf(p.pid)))).reduce((x, y) => x + y, 0)), 500)
          : undefined
        while (performance.now() - started < seconds * 1000) {
          const due = Math.floor(((performance.now() - started) / 1000) * rate) - issued
          for (let i = 0; i < due; i++) {
            issued++
            if (inFlight >= MAX_IN_FLIGHT) {
              if (measure) errors++
              continue
            }
            if (measure) offered++
            send(pairs[pi]!, measure)
            pi = (pi + 1) % pairs.length
          }
          await Bun.sleep(2)
        }
        if (rssTimer) clearInterval(rssTimer)
      }
      // Let in-flight requests and deliveries finish.
      const drainUntil = performance.now() + 5000
      while ((inFlight > 0 || sentAt.size > 0) && performance.now() < drainUntil) await Bun.sleep(20)
      sentAt.clear()
      latencies.sort((x, y) => x - y)
      deliveries.sort((x, y) => x - y)
      const level: Level = {
        target_rate: rate,
        offered,
        accepted_per_s: round(accepted / SECONDS),
        send_p50_ms: round(pct(latencies, 50)),
        send_p95_ms: round(pct(latencies, 95)),
        send_p99_ms: round(pct(latencies, 99)),
        delivery_p50_ms: round(pct(deliveries, 50)),
        delivery_p99_ms: round(pct(deliveries, 99)),
        delivered: deliveries.length,
        errors,
        rejected_429: rejected,
        server_rss_mb: round(Math.max(0, ...rssSamples) / 1048576),
      }
      levels.push(level)
      console.log(JSON.stringify(level))
      if (level.accepted_per_s < rate * 0.8 || level.send_p99_ms > 2000) break
      await Bun.sleep(1500)
    }

    const best = levels.reduce((m, l) => (l.accepted_per_s > m.accepted_per_s && l.errors === 0 ? l : m), levels[0]!)
    console.log(`\n${setup.label}`)
    printLevels(levels)
    return { levels, sustained: best.accepted_per_s }
  } finally {
    if (process.env.BENCH_PG_STATS) {
      const d = postgres(databaseUrl, { max: 1, onnotice: () => {} })
      const top = await d.unsafe(`SELECT calls, round(total_exec_time::numeric, 0) AS ms, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS q FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12`)
      console.table(top)
      await d.end()
    }
    for (const ws of sockets) ws.close()
    for (const p of servers) p.kill('SIGTERM')
    await Promise.all(servers.map((p) => p.exited))
    const a = postgres(ADMIN, { max: 1, onnotice: () => {} })
    await a.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
    await a.end()
  }
}

function printLevels(levels: Level[]) {
  console.log('\n| offered/s | accepted/s | send p50 | p95 | p99 | delivery p50 | p99 | errors | 429 | RSS MB |')
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const l of levels) {
    console.log(`| ${l.target_rate} | ${l.accepted_per_s} | ${l.send_p50_ms} | ${l.send_p95_ms} | ${l.send_p99_ms} | ${l.delivery_p50_ms} | ${l.delivery_p99_ms} | ${l.errors} | ${l.rejected_429} | ${l.server_rss_mb} |`)
  }
}

const setups: Setup[] = COMPARE
  ? [
      { label: '1 worker (Postgres, in-process bus)', shards: 1, processes: 1, redis: false },
      { label: '1 worker + Redis', shards: 1, processes: 1, redis: true },
      { label: '2 workers (SHARDS=2) + Redis', shards: 2, processes: 1, redis: true },
      { label: '2 processes + Redis', shards: 1, processes: 2, redis: true },
    ]
  : [
      {
        label: `${PROCESSES} process(es) × ${SHARDS} worker(s)${SHARDS > 1 || PROCESSES > 1 ? ' + Redis' : ''}`,
        shards: SHARDS,
        processes: PROCESSES,
        redis: SHARDS > 1 || PROCESSES > 1 || Boolean(process.env.BENCH_WITH_REDIS),
      },
    ]

const runs = []
for (const setup of setups) {
  const { levels, sustained } = await main(setup)
  runs.push({ setup, levels, sustained_accepted_per_s: sustained })
  await Bun.sleep(2000)
}
const result = {
  name: NAME,
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 1073741824), bun: Bun.version },
  config: { pairs: PAIRS, seconds_per_level: SECONDS, durability: 'Postgres default (synchronous_commit on); 201 after commit' },
  runs,
}
mkdirSync(join(import.meta.dir, 'results'), { recursive: true })
const file = join(import.meta.dir, 'results', `${NAME}${COMPARE ? '-compare' : ''}-${result.at.replace(/[:.]/g, '-')}.json`)
writeFileSync(file, JSON.stringify(result, null, 2))
if (runs.length > 1) {
  console.log('\n| setup | sustained accepted/s | at that rate: send p50 / p99 ms | delivery p50 / p99 ms | RSS MB |')
  console.log('| --- | ---: | ---: | ---: | ---: |')
  for (const r of runs) {
    const l = r.levels.find((x) => x.accepted_per_s === r.sustained_accepted_per_s) ?? r.levels[0]!
    console.log(`| ${r.setup.label} | ${r.sustained_accepted_per_s} | ${l.send_p50_ms} / ${l.send_p99_ms} | ${l.delivery_p50_ms} / ${l.delivery_p99_ms} | ${l.server_rss_mb} |`)
  }
}
console.log(`\nwrote ${file}`)
process.exit(0)
