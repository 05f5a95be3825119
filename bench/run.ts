/**
 * `bun run bench` — direct-send throughput, latency and cost against a real server on Postgres.
 *
 * 1. Measures this machine's Postgres ceiling first (single-row commits/s, rows/s in 100-row
 *    batches: bench/ceiling.ts), because the machine's speed varies from day to day and every
 *    figure must stand beside a ceiling measured in the same run.
 * 2. Starts the server (a separate `bun src/main.ts` process on a fresh database), seeds agent
 *    pairs with established conversations, connects every receiver over the WebSocket with the
 *    `ack` capability (receivers ack every frame), then offers direct sends open-loop at rising
 *    rates. Per level: accepted/s (and as a fraction of the ceiling), send p50/p95/p99,
 *    send→delivery p50/p99, lost (201 but never delivered), errors, 503s, 429s, server RSS, and
 *    CPU per accepted message of each process group — server (all workers), Postgres backends,
 *    Redis, the generator — from /proc, plus Postgres statement time per message when
 *    pg_stat_statements is loaded. After the knee (≥ 99 % accepted, 0 lost, send p99 < 50 ms)
 *    it runs one level at twice the knee to show behaviour under overload.
 * 3. Writes bench/results/<name>-<timestamp>.json with the machine's description.
 *
 *   bun run bench [--rates 1000,2500,...] [--seconds 5] [--pairs 500] [--name direct]
 *   bun run bench --shards 2 [--processes 2]     worker threads per process / processes (with Redis)
 *   bun run bench --compare                      1 worker, +Redis, 2 workers, 2 processes, side by side
 *   bun run bench --redis-cluster                2 processes on one Redis, then on a throwaway Redis
 *                                                Cluster of 3 masters (scripts/redis-cluster.sh, ports
 *                                                BENCH_CLUSTER_PORT=7120..7122, no replicas), same run
 *   bun run bench --server-dir /path             another checkout of the server (before/after)
 *   bun run bench --embedded                     the embedded default under a write flood (bench/embedded.ts)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import postgres from 'postgres'
import { seedAgents, seedPairs, type SeededPair } from '../load/seed-lib.ts'
import { freePort, spawnServer } from '../load/spawn-server.ts'
import { measureCeiling, type Ceiling } from './ceiling.ts'
import { LeanHttp } from './http-client.ts'
import { delta, pidsNamed, snapshot, withChildren, type CpuGroup } from './cpu.ts'
import { parseArgs, pct, round, rssOf } from './lib.ts'

const args = parseArgs()
if (args.has('embedded')) {
  // The embedded default under a write flood, beside Postgres (bench/embedded.ts).
  const { benchEmbedded } = await import('./embedded.ts')
  await benchEmbedded()
  process.exit(0)
}
const RATES = (args.get('rates') ?? '1000,2500,4000,5500,7000,8500,10000,12500').split(',').map(Number)
const SECONDS = Number(args.get('seconds') ?? 5)
const PAIRS = Number(args.get('pairs') ?? 500)
const NAME = args.get('name') || 'direct'
const SHARDS = Number(args.get('shards') ?? 1)
const PROCESSES = Number(args.get('processes') ?? 1)
const COMPARE = args.has('compare')
const REDIS_CLUSTER = args.has('redis-cluster')
const CLUSTER_PORT = Number(process.env.BENCH_CLUSTER_PORT ?? 7120)
const CLUSTER_NODES = `127.0.0.1:${CLUSTER_PORT},127.0.0.1:${CLUSTER_PORT + 1},127.0.0.1:${CLUSTER_PORT + 2}`
const CLUSTER_SCRIPT = join(import.meta.dir, '..', 'scripts', 'redis-cluster.sh')
const SERVER_DIR = args.get('server-dir') || undefined
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/11'
const ADMIN = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const MAX_IN_FLIGHT = 4000
/** --no-ack 1: receivers do not ack (diagnostic: isolates the cost of delivery-state updates). */
const NO_ACK = args.get('no-ack') === '1'
/**
 * --connections N: keep-alive connections per server process (default 256). Each carries one
 * request at a time and queues the rest on the client, so the server never holds more than N
 * sends: past capacity the wait piles up in the generator, where no server bound can see it.
 * Many connections (as many independent agents would open) put the queue in the server, where
 * the writer's bounds answer 503 instead.
 */
const CONNECTIONS = Number(args.get('connections') ?? 256)

async function startServer(databaseUrl: string, port: number, extra: Record<string, string>): Promise<Subprocess> {
  // BENCH_SERVER_FLAGS passes Bun flags to the server, e.g. "--cpu-prof-md --cpu-prof-dir=/tmp/prof".
  const flags = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean)
  const env = { DATABASE_URL: databaseUrl, DATABASE_POOL: '20', DATA_DIR: '/tmp/ac-bench-data', ...extra }
  return (await spawnServer(env, { port, flags, cwd: SERVER_DIR })).proc
}

interface Level {
  target_rate: number
  offered: number
  accepted_per_s: number
  accepted_of_ceiling: number
  send_p50_ms: number
  send_p95_ms: number
  send_p99_ms: number
  delivery_p50_ms: number
  delivery_p99_ms: number
  delivered: number
  lost: number
  errors: number
  unavailable_503: number
  rejected_429: number
  server_rss_mb: number
  /** CPU µs per accepted message, per process group, and their sum. */
  cpu_us_per_msg: Record<string, number>
  /** Postgres statement execution time per accepted message (pg_stat_statements), µs. */
  pg_statement_us_per_msg: number | null
  pg_top_statements?: { calls: number; ms: number; rows: number; query: string }[]
  machine_busy_pct: number
}

interface Setup {
  label: string
  shards: number
  processes: number
  redis: boolean
  /** On the throwaway Redis Cluster instead of REDIS_URL. */
  cluster?: boolean
}

/** Start (fresh, empty) or stop the bench's Redis Cluster: 3 masters, no replicas. */
function benchCluster(cmd: 'start' | 'stop') {
  const r = Bun.spawnSync(['bash', CLUSTER_SCRIPT, cmd, String(CLUSTER_PORT), '0'], { stdout: 'pipe', stderr: 'pipe' })
  if (cmd === 'start' && r.exitCode !== 0) throw new Error(`redis-cluster.sh start failed: ${r.stderr.toString()}`)
}

/** The bench cluster's redis-server pids (from the script's pid files). */
function clusterPids(): number[] {
  const out: number[] = []
  for (let i = 0; i < 3; i++) {
    try {
      out.push(Number(readFileSync(`/tmp/ac-redis-cluster-${CLUSTER_PORT}/${CLUSTER_PORT + i}/redis.pid`, 'utf8').trim()))
    } catch {}
  }
  return out
}

/** Whole-machine busy fraction from /proc/stat between two reads. */
async function machineTicks(): Promise<{ busy: number; total: number }> {
  const line = (await Bun.file('/proc/stat').text()).split('\n')[0]!.split(/\s+/).slice(1).map(Number)
  const idle = (line[3] ?? 0) + (line[4] ?? 0)
  const total = line.reduce((a, b) => a + b, 0)
  return { busy: total - idle, total }
}

async function pgStats(databaseUrl: string): Promise<postgres.Sql | null> {
  const d = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  try {
    await d.unsafe('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
    await d.unsafe('SELECT pg_stat_statements_reset()')
    return d
  } catch {
    await d.end()
    return null // not in shared_preload_libraries on this server
  }
}

async function main(setup: Setup, ceiling: Ceiling): Promise<{ levels: Level[]; knee: Level | null }> {
  const dbName = `ac_bench_${Date.now().toString(36)}`
  const admin = postgres(ADMIN, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE ${dbName}`)
  await admin.end()
  const databaseUrl = ADMIN.replace(/\/[^/]*$/, `/${dbName}`)
  if (setup.cluster) benchCluster('start')
  else if (setup.redis) {
    const { default: Redis } = await import('ioredis')
    const r = new Redis(REDIS_URL)
    await r.flushdb()
    r.disconnect()
  }
  const redisEnv: Record<string, string> = setup.cluster ? { REDIS_CLUSTER_NODES: CLUSTER_NODES } : setup.redis ? { REDIS_URL } : {}
  const extra: Record<string, string> = { SHARDS: String(setup.shards), ...redisEnv }
  const servers: Subprocess[] = []
  const bases: string[] = []
  for (let i = 0; i < setup.processes; i++) {
    const port = freePort()
    servers.push(await startServer(databaseUrl, port, extra))
    bases.push(`http://127.0.0.1:${port}`)
  }
  const stats = await pgStats(databaseUrl)
  const groups: CpuGroup[] = [
    { name: 'server', pids: () => servers.flatMap((s) => withChildren(s.pid)) },
    { name: 'postgres', pids: () => pidsNamed('postgres') },
    {
      name: 'redis',
      // The one Redis: every redis-server but the bench cluster's; the cluster: its three masters.
      pids: () => {
        if (!setup.redis) return []
        const mine = new Set(clusterPids())
        return setup.cluster ? [...mine] : pidsNamed('redis-server').filter((p) => !mine.has(p))
      },
    },
    { name: 'generator', pids: () => [process.pid] },
  ]
  let pairs: SeededPair[] = []
  const sockets: WebSocket[] = []
  // Keep-alive pipelined connections (bench/http-client.ts): fetch costs the generator as much CPU as the server.
  const clients = bases.map((b) => new LeanHttp('127.0.0.1', Number(new URL(b).port), CONNECTIONS))
  try {
    const agents = await seedAgents(databaseUrl, PAIRS * 2, 'bench')
    pairs = await seedPairs(databaseUrl, agents)
    console.log(`seeded ${pairs.length} established pairs; connecting ${pairs.length} receivers`)

    const sentAt = new Map<string, number>()
    let deliveries: number[] = []
    const deliveredIds = new Set<string>()
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
              const id = f.payload.client_msg_id
              const t0 = sentAt.get(id)
              if (t0 !== undefined) {
                deliveries.push(performance.now() - t0)
                sentAt.delete(id)
              }
              deliveredIds.add(id)
              if (!NO_ACK) ws.send(JSON.stringify({ type: 'ack', message_id: f.payload.id }))
            }
          }),
      ),
    )

    const levels: Level[] = []
    let seq = 0
    const runLevel = async (rate: number): Promise<Level> => {
      const latencies: number[] = []
      const acceptedIds: string[] = []
      let errors = 0
      let unavailable = 0
      let rejected = 0
      let offered = 0
      let inFlight = 0
      deliveries = []
      deliveredIds.clear()
      const rssSamples: number[] = []
      const send = (p: SeededPair, measure: boolean) => {
        const id = `b${seq++}`
        const t0 = performance.now()
        if (measure) sentAt.set(id, t0)
        inFlight++
        clients[seq % clients.length]!
          .post('/v1/messages', { authorization: `Bearer ${p.a.apiKey}` }, JSON.stringify({ to: p.b.handle, client_msg_id: id, content: { text: 'benchmark message' } }))
          .then((r) => {
            if (!measure) return
            latencies.push(performance.now() - t0)
            if (r.status === 201) acceptedIds.push(id)
            else if (r.status === 429) rejected++
            else if (r.status === 503) unavailable++
            else {
              errors++
              if (errors <= 3) console.error(`unexpected ${r.status}: ${r.body.slice(0, 200)}`)
            }
          })
          .catch((err) => {
            if (!measure) return
            errors++
            if (errors <= 3) console.error(`request failed: ${(err as Error).message}`)
          })
          .finally(() => inFlight--)
      }
      let cpuBefore = snapshot(groups)
      let ticksBefore = await machineTicks()
      // Warm up for one second at the target rate, then measure.
      for (const [phase, seconds] of [['warm', 1], ['measure', SECONDS]] as const) {
        const measure = phase === 'measure'
        if (measure) {
          if (stats) await stats.unsafe('SELECT pg_stat_statements_reset()')
          cpuBefore = snapshot(groups)
          ticksBefore = await machineTicks()
        }
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
              if (measure) errors++ // the generator could not even start it
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
      // Let in-flight requests and deliveries finish (their CPU counts: it is the level's work).
      const drainUntil = performance.now() + 5000
      while ((inFlight > 0 || sentAt.size > 0) && performance.now() < drainUntil) await Bun.sleep(20)
      await Bun.sleep(300) // acks of the last deliveries
      const used = delta(cpuBefore, snapshot(groups))
      const ticksAfter = await machineTicks()
      sentAt.clear()
      latencies.sort((x, y) => x - y)
      deliveries.sort((x, y) => x - y)
      const accepted = acceptedIds.length
      const lost = acceptedIds.filter((id) => !deliveredIds.has(id)).length
      const perMsg = (s: number) => (accepted > 0 ? round((s * 1e6) / accepted) : NaN)
      const cpu: Record<string, number> = {}
      for (const [k, v] of Object.entries(used)) cpu[k] = perMsg(v)
      cpu.total = perMsg(Object.values(used).reduce((a, b) => a + b, 0))
      let pgUs: number | null = null
      let top: Level['pg_top_statements']
      if (stats) {
        const rows = await stats.unsafe(
          `SELECT calls::int, round(total_exec_time::numeric, 1)::float AS ms, rows::int, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS query
           FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT 6`,
        )
        const [sum] = await stats.unsafe(`SELECT coalesce(sum(total_exec_time), 0)::float AS ms FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)
        pgUs = perMsg(Number(sum?.ms ?? 0) / 1000)
        top = rows as unknown as Level['pg_top_statements']
      }
      const level: Level = {
        target_rate: rate,
        offered,
        accepted_per_s: round(accepted / SECONDS),
        accepted_of_ceiling: round(accepted / SECONDS / ceiling.batch100_rows_per_s),
        send_p50_ms: round(pct(latencies, 50)),
        send_p95_ms: round(pct(latencies, 95)),
        send_p99_ms: round(pct(latencies, 99)),
        delivery_p50_ms: round(pct(deliveries, 50)),
        delivery_p99_ms: round(pct(deliveries, 99)),
        delivered: deliveries.length,
        lost,
        errors,
        unavailable_503: unavailable,
        rejected_429: rejected,
        server_rss_mb: round(Math.max(0, ...rssSamples) / 1048576),
        cpu_us_per_msg: cpu,
        pg_statement_us_per_msg: pgUs,
        pg_top_statements: top,
        machine_busy_pct: round((100 * (ticksAfter.busy - ticksBefore.busy)) / Math.max(1, ticksAfter.total - ticksBefore.total)),
      }
      console.log(JSON.stringify({ ...level, pg_top_statements: undefined }))
      return level
    }

    const isKnee = (l: Level) => l.accepted_per_s >= 0.99 * l.target_rate && l.lost === 0 && l.errors === 0 && l.send_p99_ms < 50
    // Rising levels while the server still accepts nearly everything offered; the knee is the
    // highest that meets the latency bar too.
    let knee: Level | null = null
    for (const rate of RATES) {
      const level = await runLevel(rate)
      levels.push(level)
      if (isKnee(level)) knee = level
      if (level.accepted_per_s < 0.9 * rate || level.send_p99_ms > 5000) break
      await Bun.sleep(1500)
    }
    if (knee && !levels.some((l) => l.target_rate >= knee!.target_rate * 2)) {
      // Overload: twice the knee. Accepted/s should stay near the best level and health fast.
      await Bun.sleep(1500)
      levels.push(await runLevel(knee.target_rate * 2))
    }
    console.log(`\n${setup.label}`)
    printLevels(levels)
    return { levels, knee }
  } finally {
    await stats?.end()
    for (const c of clients) c.close()
    for (const ws of sockets) ws.close()
    for (const p of servers) p.kill('SIGTERM')
    await Promise.all(servers.map((p) => p.exited))
    const a = postgres(ADMIN, { max: 1, onnotice: () => {} })
    await a.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
    await a.end()
    if (setup.cluster) benchCluster('stop')
  }
}

function printLevels(levels: Level[]) {
  console.log('\n| offered/s | accepted/s | of ceiling | send p50 | p95 | p99 | delivery p50 | p99 | lost | errors | 503 | CPU µs/msg (server / pg / redis / gen / total) | pg stmt µs/msg | busy % |')
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const l of levels) {
    const c = l.cpu_us_per_msg
    console.log(
      `| ${l.target_rate} | ${l.accepted_per_s} | ${Math.round(l.accepted_of_ceiling * 100)} % | ${l.send_p50_ms} | ${l.send_p95_ms} | ${l.send_p99_ms} | ${l.delivery_p50_ms} | ${l.delivery_p99_ms} | ${l.lost} | ${l.errors} | ${l.unavailable_503} | ${c.server} / ${c.postgres} / ${c.redis} / ${c.generator} / ${c.total} | ${l.pg_statement_us_per_msg ?? 'n/a'} | ${l.machine_busy_pct} |`,
    )
  }
}

const setups: Setup[] = REDIS_CLUSTER
  ? [
      { label: '2 processes + one Redis', shards: 1, processes: 2, redis: true },
      { label: '2 processes + Redis Cluster (3 masters)', shards: 1, processes: 2, redis: true, cluster: true },
    ]
  : COMPARE
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

// The ceiling, on a throwaway database of the same server, before any level runs.
const ceilingDb = `ac_bench_ceiling_${Date.now().toString(36)}`
{
  const a = postgres(ADMIN, { max: 1, onnotice: () => {} })
  await a.unsafe(`CREATE DATABASE ${ceilingDb}`)
  await a.end()
}
const ceiling = await measureCeiling(ADMIN.replace(/\/[^/]*$/, `/${ceilingDb}`))
{
  const a = postgres(ADMIN, { max: 1, onnotice: () => {} })
  await a.unsafe(`DROP DATABASE IF EXISTS ${ceilingDb} WITH (FORCE)`)
  await a.end()
}
console.log(`Postgres ceiling (8 clients): ${ceiling.single_row_commits_per_s} single-row commits/s, ${ceiling.batch100_rows_per_s} rows/s in 100-row batches`)

const runs = []
for (const setup of setups) {
  const { levels, knee } = await main(setup, ceiling)
  runs.push({ setup, levels, knee_accepted_per_s: knee?.accepted_per_s ?? null })
  await Bun.sleep(2000)
}
const result = {
  name: NAME,
  at: new Date().toISOString(),
  server_dir: SERVER_DIR ?? 'this checkout',
  machine: {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model,
    memory_gb: Math.round(totalmem() / 1073741824),
    bun: Bun.version,
    note: process.env.BENCH_NOTE ?? 'server, Postgres, Redis and the generator share these cores',
    loadavg_at_end: loadavg().map((x) => round(x)),
  },
  ceiling,
  config: { pairs: PAIRS, seconds_per_level: SECONDS, durability: 'Postgres default (synchronous_commit on); 201 after commit', receivers: NO_ACK ? 'no ack' : 'WebSocket with ack, every frame acked', connections_per_process: CONNECTIONS },
  runs,
}
mkdirSync(join(import.meta.dir, 'results'), { recursive: true })
const file = join(import.meta.dir, 'results', `${NAME}${COMPARE ? '-compare' : REDIS_CLUSTER ? '-redis-cluster' : ''}-${result.at.replace(/[:.]/g, '-')}.json`)
writeFileSync(file, JSON.stringify(result, null, 2))
if (runs.length > 1) {
  console.log('\n| setup | knee accepted/s | at the knee: send p50 / p99 ms | delivery p50 / p99 ms | CPU µs/msg | RSS MB |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |')
  for (const r of runs) {
    const l = r.levels.find((x) => x.accepted_per_s === r.knee_accepted_per_s) ?? r.levels[0]!
    console.log(`| ${r.setup.label} | ${r.knee_accepted_per_s ?? '—'} | ${l.send_p50_ms} / ${l.send_p99_ms} | ${l.delivery_p50_ms} / ${l.delivery_p99_ms} | ${l.cpu_us_per_msg.total} | ${l.server_rss_mb} |`)
  }
}
console.log(`\nwrote ${file}`)
process.exit(0)
