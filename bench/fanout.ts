/**
 * `bun run bench:fanout` — group fan-out: G groups of 256 members (the same 256 agents, each on
 * one WebSocket with `ack`), one sender per group offering R messages/s per group (a group takes
 * at most 20/s). Reports messages/s into groups, delivered frames/s counted at the sockets,
 * send→frame latency p50/p99, errors, server RSS and CPU per delivered frame, beside the
 * WebSocket publish ceiling measured in the same run (frames/s a bare `server.publish` delivers to
 * the same number of sockets, parsed the same way: bench/publish-server.ts); writes
 * bench/results/fanout-*.json.
 *
 *   bun run bench:fanout [--groups 12] [--rates 5,10,20] [--seconds 5] [--members 256] [--server-dir /path --name fanout-before]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { seedAgents, seedGroups } from '../load/seed-lib.ts'
import { spawnServer } from '../load/spawn-server.ts'
import { delta, pidsNamed, snapshot, withChildren, type CpuGroup } from './cpu.ts'
import { parseArgs, pct, round, rssOf } from './lib.ts'

const args = parseArgs()
const GROUPS = Number(args.get('groups') ?? 12)
const MEMBERS = Number(args.get('members') ?? 256)
const RATES = (args.get('rates') ?? '5,10,20').split(',').map(Number)
const SECONDS = Number(args.get('seconds') ?? 5)
const SERVER_DIR = args.get('server-dir') || undefined
const NAME = args.get('name') || 'fanout'
const ADMIN = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** Frames/s a bare Bun server's `publish` delivers to MEMBERS sockets whose client parses each frame. */
async function publishCeiling(): Promise<number> {
  const proc = Bun.spawn(['bun', join(import.meta.dir, 'publish-server.ts'), '0'], { stdout: 'pipe', stderr: 'inherit' })
  const reader = proc.stdout.getReader()
  const port = Number(new TextDecoder().decode((await reader.read()).value).trim())
  let got = 0
  const socks = await Promise.all(
    Array.from({ length: MEMBERS }, () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
      ws.onopen = () => resolve(ws)
      ws.onerror = () => reject(new Error('ws error'))
      ws.onmessage = (e) => {
        JSON.parse(String(e.data))
        got++
      }
    })),
  )
  await Bun.sleep(300)
  const t0 = performance.now()
  await fetch(`http://127.0.0.1:${port}/burst?seconds=3&bytes=600`)
  await Bun.sleep(500) // frames still in flight
  const fps = got / ((performance.now() - t0) / 1000)
  for (const ws of socks) ws.close()
  proc.kill()
  await proc.exited
  return round(fps)
}

const ceilingFps = await publishCeiling()
console.log(`WebSocket publish ceiling: ${ceilingFps} frames/s to ${MEMBERS} sockets`)

const dbName = `ac_fanout_${Date.now().toString(36)}`
const admin = postgres(ADMIN, { max: 1, onnotice: () => {} })
await admin.unsafe(`CREATE DATABASE ${dbName}`)
await admin.end()
const databaseUrl = ADMIN.replace(/\/[^/]*$/, `/${dbName}`)
const spawned = await spawnServer({ DATABASE_URL: databaseUrl, DATA_DIR: '/tmp/ac-bench-data', SHARDS: '1' }, { cwd: SERVER_DIR })
const server = spawned.proc
const base = spawned.url

const cpuGroups: CpuGroup[] = [
  { name: 'server', pids: () => withChildren(server.pid) },
  { name: 'postgres', pids: () => pidsNamed('postgres') },
  { name: 'generator', pids: () => [process.pid] },
]
const members = await seedAgents(databaseUrl, MEMBERS, 'fan')
const groups = await seedGroups(databaseUrl, members, GROUPS)
console.log(`seeded ${GROUPS} groups × ${MEMBERS} members; connecting ${MEMBERS} sockets`)
const sentAt = new Map<string, number>()
let latencies: number[] = []
let frames = 0
const sockets: WebSocket[] = []
await Promise.all(
  members.map(
    (m) =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`)
        sockets.push(ws)
        ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', api_key: m.apiKey, capabilities: ['ack'] }))
        ws.onerror = () => reject(new Error('ws error'))
        ws.onmessage = (e) => {
          const f = JSON.parse(String(e.data))
          if (f.type === 'hello.ok') return resolve()
          if (f.type !== 'message.new') return
          frames++
          const t0 = sentAt.get(f.payload.client_msg_id)
          if (t0 !== undefined) latencies.push(performance.now() - t0)
          ws.send(JSON.stringify({ type: 'ack', message_id: f.payload.id }))
        }
      }),
  ),
)

const levels = []
let seq = 0
for (const rate of RATES) {
  let accepted = 0
  let errors = 0
  let inFlight = 0
  latencies = []
  frames = 0
  const rss: number[] = []
  const started = performance.now()
  let issued = 0
  const rssTimer = setInterval(async () => rss.push(await rssOf(server.pid)), 500)
  const cpuBefore = snapshot(cpuGroups)
  while (performance.now() - started < SECONDS * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate) - issued
    for (let i = 0; i < due; i++) {
      issued++
      groups.forEach((g, gi) => {
        const id = `f${seq++}`
        sentAt.set(id, performance.now())
        inFlight++
        fetch(`${base}/v1/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${members[(gi % (MEMBERS - 1)) + 1]!.apiKey}` },
          body: JSON.stringify({ conversation_id: g, client_msg_id: id, content: { text: 'fan-out benchmark' } }),
        })
          .then(async (r) => {
            await r.arrayBuffer()
            if (r.status === 201) accepted++
            else errors++
          })
          .catch(() => errors++)
          .finally(() => inFlight--)
      })
    }
    await Bun.sleep(5)
  }
  const measuredMs = performance.now() - started
  const framesAtEnd = frames
  const drainUntil = performance.now() + 5000
  while (inFlight > 0 && performance.now() < drainUntil) await Bun.sleep(20)
  await Bun.sleep(500)
  clearInterval(rssTimer)
  const used = delta(cpuBefore, snapshot(cpuGroups))
  latencies.sort((a, b) => a - b)
  const level = {
    per_group_rate: rate,
    groups: GROUPS,
    messages_per_s: round(accepted / (measuredMs / 1000)),
    delivered_frames_per_s: round(framesAtEnd / (measuredMs / 1000)),
    delivered_total: frames,
    expected_total: accepted * (MEMBERS - 1),
    delivery_p50_ms: round(pct(latencies, 50)),
    delivery_p99_ms: round(pct(latencies, 99)),
    errors,
    server_rss_mb: round(Math.max(0, ...rss) / 1048576),
    of_publish_ceiling: round(framesAtEnd / (measuredMs / 1000) / ceilingFps),
    /** CPU µs per delivered frame, per process group. */
    cpu_us_per_frame: Object.fromEntries(Object.entries(used).map(([k, v]) => [k, round((v * 1e6) / Math.max(1, frames))])),
  }
  levels.push(level)
  console.log(JSON.stringify(level))
  sentAt.clear()
  await Bun.sleep(1500)
}

const result = {
  name: NAME,
  server_dir: SERVER_DIR ?? 'this checkout',
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 1073741824), bun: Bun.version },
  publish_ceiling_frames_per_s: ceilingFps,
  config: { groups: GROUPS, members: MEMBERS, seconds: SECONDS, delivery_state: 'one row per group message; per-member cursors moved by batched acks over the socket' },
  levels,
}
mkdirSync(join(import.meta.dir, 'results'), { recursive: true })
const file = join(import.meta.dir, 'results', `${NAME}-${result.at.replace(/[:.]/g, '-')}.json`)
writeFileSync(file, JSON.stringify(result, null, 2))
console.log(`\nWebSocket publish ceiling (same run): ${ceilingFps} frames/s`)
console.log('\n| msgs/s per group | groups | messages/s | delivered frames/s | of publish ceiling | delivery p50 ms | p99 | errors | CPU µs/frame (server / pg / gen) | RSS MB |')
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const l of levels) {
  const c = l.cpu_us_per_frame
  console.log(`| ${l.per_group_rate} | ${l.groups} | ${l.messages_per_s} | ${l.delivered_frames_per_s} | ${Math.round(l.of_publish_ceiling * 100)} % | ${l.delivery_p50_ms} | ${l.delivery_p99_ms} | ${l.errors} | ${c.server} / ${c.postgres} / ${c.generator} | ${l.server_rss_mb} |`)
}
console.log(`\nwrote ${file}`)
for (const ws of sockets) ws.close()
server.kill('SIGTERM')
await server.exited
const a2 = postgres(ADMIN, { max: 1, onnotice: () => {} })
await a2.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
await a2.end()
process.exit(0)
