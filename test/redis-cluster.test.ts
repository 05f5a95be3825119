import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { AgentChatClient } from 'agentchatme'
import { backends, createTestDatabase, readCode, WsProbe } from './harness.ts'
import { spawnServer, type SpawnedServer } from '../load/spawn-server.ts'
import { shardChannel } from '../src/bus/redis.ts'
import { vshardOf } from '../src/shard/vshard.ts'

// Real servers and a real six-node Redis Cluster on a busy 2-core machine.
setDefaultTimeout(90_000)

/**
 * Failover on a Redis Cluster (issue 17): two real server processes on a private throwaway cluster
 * (three masters, one replica each, `scripts/redis-cluster.sh`), one master SIGKILLed mid-traffic
 * — the one whose slot carries the recipient's delivery channel. Every 201 must be stored and
 * reach the recipient's socket; after the replica is promoted the servers, not restarted, deliver
 * live again over sharded pub/sub. Runs with the `sharded+cluster` backend.
 */

const hasCluster = (await backends()).includes('sharded+cluster')
const BASE = Number(process.env.TEST_REDIS_FAILOVER_PORT ?? 7110)
const SCRIPT = join(import.meta.dir, '..', 'scripts', 'redis-cluster.sh')
const NODES = `127.0.0.1:${BASE},127.0.0.1:${BASE + 1},127.0.0.1:${BASE + 2}`

function cluster(cmd: 'start' | 'stop') {
  const r = Bun.spawnSync(['bash', SCRIPT, cmd, String(BASE), '1'], { env: { ...process.env, CLUSTER_NODE_TIMEOUT_MS: '1000' }, stderr: 'pipe', stdout: 'pipe' })
  if (cmd === 'start' && r.exitCode !== 0) throw new Error(`redis-cluster.sh start failed: ${r.stderr.toString()}`)
}

/** The port of the master serving `slot`, as a surviving node sees it. */
async function masterOf(slot: number, askPort: number): Promise<number | null> {
  const r = new Redis(askPort, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  r.on('error', () => {})
  try {
    await r.connect()
    const info = String(await r.cluster('INFO'))
    if (!info.includes('cluster_state:ok')) return null
    const slots = (await r.cluster('SLOTS')) as unknown as [number, number, [string, number, string]][]
    const range = slots.find(([a, b]) => slot >= a && slot <= b)
    return range ? Number(range[2][1]) : null
  } catch {
    return null
  } finally {
    r.disconnect()
  }
}

async function register(url: string, mailDir: string, prefix: string) {
  const handle = `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`
  const email = `${handle}@example.test`
  const started = Date.now() - 5
  const { pending_id } = await AgentChatClient.register({ baseUrl: url, email, handle })
  const code = await readCode(mailDir, email, started)
  const { apiKey } = await AgentChatClient.verify(pending_id, code, { baseUrl: url })
  return { handle, apiKey, via: (u: string) => new AgentChatClient({ apiKey, baseUrl: u }) }
}
type Agent = Awaited<ReturnType<typeof register>>

async function send(url: string, from: Agent, to: Agent, id: string) {
  const r = await fetch(`${url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${from.apiKey}` },
    body: JSON.stringify({ to: to.handle, client_msg_id: id, content: { text: id } }),
  })
  return { status: r.status, body: (await r.json()) as any }
}

async function stop(p: SpawnedServer) {
  p.proc.kill('SIGTERM')
  await Promise.race([p.proc.exited, Bun.sleep(10_000).then(() => p.proc.kill(9))])
}

describe.if(hasCluster)('Redis Cluster failover', () => {
  beforeAll(() => cluster('start'))
  afterAll(() => cluster('stop'))

  test('a master stopped mid-traffic: every 201 is stored and reaches the socket, and live delivery resumes after the replica is promoted, no restart', async () => {
    const db = await createTestDatabase()
    const dataDir = mkdtempSync(join(tmpdir(), 'ac-failover-'))
    const mailDir = join(dataDir, 'mail')
    const env = { DATABASE_URL: db.url, REDIS_CLUSTER_NODES: NODES, DATA_DIR: dataDir, MAIL_DIR: mailDir, SHARDS: '1', DATABASE_POOL: '5', LOG_LEVEL: process.env.FAILOVER_LOG ?? 'warn' }
    // FAILOVER_LOG=info shows the servers' view (fallbacks, the re-drain after the slot returns).
    const A = await spawnServer(env, { quiet: !process.env.FAILOVER_LOG })
    const B = await spawnServer(env, { quiet: !process.env.FAILOVER_LOG })
    try {
      const a = await register(A.url, mailDir, 'fa')
      const b = await register(B.url, mailDir, 'fb')
      expect((await send(A.url, a, b, 'hi')).status).toBe(201)
      expect((await send(B.url, b, a, 'hi back')).status).toBe(201)
      const ws = await new WsProbe(B.url).hello(b.apiKey, []) // legacy mode: written frames count as delivered
      const seen = () => new Set(ws.ofType('message.new').map((f) => f.payload.id))

      // The master carrying b's delivery channel (A publishes there, B is subscribed there).
      const probe = new Redis(BASE, '127.0.0.1')
      const slot = Number(await probe.cluster('KEYSLOT', shardChannel(vshardOf(b.handle))))
      probe.disconnect()
      const victim = (await masterOf(slot, BASE))!
      expect(victim).toBeGreaterThanOrEqual(BASE)
      const survivor = [BASE, BASE + 1, BASE + 2].find((p) => p !== victim)!

      const acknowledged: string[] = []
      let i = 0
      const burst = async (count: number) => {
        for (let k = 0; k < count; k++) {
          const r = await send(A.url, a, b, `f${i++}`)
          if (r.status === 201) acknowledged.push(r.body.id)
          else expect(r.status).toBe(429)
          await Bun.sleep(25)
        }
      }
      await burst(10)
      await ws.until(() => acknowledged.every((id) => seen().has(id)), 'live delivery before the failure')

      // Stop the master: SIGKILL, no goodbye to the cluster.
      const pid = Number(readFileSync(`/tmp/ac-redis-cluster-${BASE}/${victim}/redis.pid`, 'utf8').trim())
      process.kill(pid, 'SIGKILL')
      const stoppedAt = Date.now()
      // Health, watched from now until the replica is promoted, must say degraded at some point.
      let degraded = false
      let watching = true
      const watcher = (async () => {
        while (watching && !degraded) {
          degraded = (await fetch(`${A.url}/v1/health`)).status === 503
          await Bun.sleep(50)
        }
      })()
      // The slot has no master for a while: sends still commit (the limits whose keys were on
      // that node fall back per process).
      await burst(20)

      // The replica is promoted (cluster-node-timeout 1 s on this cluster).
      let promoted: number | null = null
      for (let t = 0; t < 200; t++) {
        promoted = await masterOf(slot, survivor)
        if (promoted !== null && promoted !== victim) break
        await Bun.sleep(100)
      }
      expect(promoted).not.toBeNull()
      expect(promoted).not.toBe(victim)
      const failoverMs = Date.now() - stoppedAt
      watching = false
      await watcher
      expect(degraded).toBe(true)
      // Health follows: degraded while the slot was unserved, ok once every slot is served again.
      for (let t = 0; t < 100 && (await fetch(`${B.url}/v1/health`)).status !== 200; t++) await Bun.sleep(100)
      expect((await fetch(`${B.url}/v1/health`)).status).toBe(200)

      await burst(10)
      expect(acknowledged.length).toBeGreaterThanOrEqual(35)
      // Nothing acknowledged is lost: in history, and on the socket (live, or re-drained once the
      // slot is served again).
      await ws.until(() => acknowledged.every((id) => seen().has(id)), 'every acknowledged message on the socket', 20_000)
      const conv = (await b.via(B.url).listConversations())[0]!.id
      const stored = new Set((await b.via(A.url).getMessages(conv, { limit: 200 })).map((m) => m.id))
      expect(acknowledged.filter((id) => !stored.has(id))).toEqual([])

      // Live again, without restarting either server: a new message arrives within 2 s over the
      // promoted master's sharded pub/sub (no re-drain is pending any more).
      const fresh = await send(A.url, a, b, 'after-failover')
      expect(fresh.status).toBe(201)
      const sentAt = Date.now()
      await ws.until(() => seen().has(fresh.body.id), 'live delivery after failover', 2000)
      console.log(`[failover] slot ${slot}: master ${victim} → ${promoted} in ${failoverMs} ms; ${acknowledged.length} acknowledged, all delivered; live again in ${Date.now() - sentAt} ms`)
      ws.close()
    } finally {
      await stop(A)
      await stop(B)
      await db.drop()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
