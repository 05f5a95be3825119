/**
 * Runs one k6 suite against a fresh server: creates a Postgres database, starts the server
 * (`--processes N` processes sharing it and Redis), seeds what the suite needs through the
 * server's own tables (k6 cannot read OTP mail) into load/.seed/<suite>.json, then runs
 * `k6 run load/<suite>.js` with SEED_FILE and BASE_URLS. Exits with k6's status, so a failed
 * threshold fails the caller (CI).
 *
 *   bun load/run.ts rate-limit [--processes 2] [--env KEY=VALUE ...]
 *   bun load/run.ts smoke          rate-limit (1 and 2 processes) and backlog, short
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import postgres from 'postgres'
import Redis from 'ioredis'
import { seedAgents, seedGroups, seedPairs, seedStar } from './seed-lib.ts'
import { spawnServer } from './spawn-server.ts'
import { rssOf } from '../bench/lib.ts'

const ROOT = join(import.meta.dir, '..')
const ADMIN = process.env.LOAD_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const REDIS_URL = process.env.LOAD_REDIS_URL ?? 'redis://127.0.0.1:6379/10'

export function k6Binary(): string {
  if (process.env.K6) return process.env.K6
  const fromGo = join(homedir(), 'go', 'bin', 'k6')
  if (existsSync(fromGo)) return fromGo
  return 'k6'
}

async function startServers(databaseUrl: string, processes: number): Promise<{ procs: Subprocess[]; bases: string[] }> {
  const procs: Subprocess[] = []
  const bases: string[] = []
  for (let i = 0; i < processes; i++) {
    const s = await spawnServer({ DATABASE_URL: databaseUrl, REDIS_URL, SHARDS: '1', DATA_DIR: '/tmp/ac-load-data' })
    procs.push(s.proc)
    bases.push(s.url)
  }
  return { procs, bases }
}

async function seedFor(suite: string, databaseUrl: string, env: Record<string, string>) {
  const pub = (a: { handle: string; apiKey: string }) => ({ handle: a.handle, apiKey: a.apiKey })
  switch (suite) {
    case 'rate-limit':
    case 'throughput':
    case 'soak': {
      const pairs = await seedPairs(databaseUrl, await seedAgents(databaseUrl, Number(env.PAIRS ?? 200) * 2, suite.slice(0, 4)))
      return { pairs: pairs.map((p) => ({ a: pub(p.a), b: pub(p.b), conversationId: p.conversationId })) }
    }
    case 'backlog': {
      const [recipient, ...senders] = await seedAgents(databaseUrl, 201, 'blog')
      await seedStar(databaseUrl, recipient!, senders)
      return { recipient: pub(recipient!), senders: senders.map(pub) }
    }
    case 'fanout': {
      const members = await seedAgents(databaseUrl, Number(env.MEMBERS ?? 256), 'fan')
      const groups = await seedGroups(databaseUrl, members, Number(env.GROUPS ?? 12))
      return { members: members.map(pub), groups }
    }
    default:
      throw new Error(`unknown suite ${suite}`)
  }
}

export async function runSuite(suite: string, processes: number, env: Record<string, string>): Promise<number> {
  const dbName = `ac_load_${suite.replace(/-/g, '_')}_${Date.now().toString(36)}`
  const admin = postgres(ADMIN, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE ${dbName}`)
  await admin.end()
  const databaseUrl = ADMIN.replace(/\/[^/]*$/, `/${dbName}`)
  const r = new Redis(REDIS_URL)
  await r.flushdb()
  r.disconnect()
  const { procs, bases } = await startServers(databaseUrl, processes)
  try {
    const seed = await seedFor(suite, databaseUrl, env)
    mkdirSync(join(import.meta.dir, '.seed'), { recursive: true })
    const seedFile = join(import.meta.dir, '.seed', `${suite}.json`)
    writeFileSync(seedFile, JSON.stringify(seed))
    console.log(`[load] ${suite}: ${processes} process(es) at ${bases.join(', ')}`)
    const k6 = Bun.spawn([k6Binary(), 'run', '--quiet', join('load', `${suite}.js`)], {
      cwd: ROOT,
      env: { ...process.env, ...env, SEED_FILE: seedFile, BASE_URLS: bases.join(',') },
      stdout: 'inherit',
      stderr: 'inherit',
    })
    // The server's RSS over the run (flat RSS is one of the soak's claims).
    const rss: { t: number; mb: number }[] = []
    const t0 = Date.now()
    const timer = setInterval(async () => {
      let bytes = 0
      for (const p of procs) bytes += await rssOf(p.pid)
      rss.push({ t: Math.round((Date.now() - t0) / 1000), mb: Math.round(bytes / 1048576) })
    }, 10_000)
    const code = await k6.exited
    clearInterval(timer)
    if (rss.length > 1) {
      const file = join(import.meta.dir, 'results', `${suite}-rss-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
      writeFileSync(file, JSON.stringify(rss))
      const mbs = rss.map((r) => r.mb)
      console.log(`[load] server RSS over the run: first ${mbs[0]} MB, min ${Math.min(...mbs)}, max ${Math.max(...mbs)}, last ${mbs[mbs.length - 1]} MB (${file})`)
    }
    return code
  } finally {
    for (const p of procs) p.kill('SIGTERM')
    await Promise.all(procs.map((p) => p.exited))
    const a = postgres(ADMIN, { max: 1, onnotice: () => {} })
    await a.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
    await a.end()
  }
}

if (import.meta.main) {
  const [suite, ...rest] = process.argv.slice(2)
  const env: Record<string, string> = {}
  let processes = 1
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--processes') processes = Number(rest[++i])
    else if (rest[i] === '--env') {
      const [k, v] = rest[++i]!.split('=')
      env[k!] = v ?? ''
    }
  }
  let code = 0
  if (suite === 'smoke') {
    const started = Date.now()
    const smoke = { RESULT_TAG: 'smoke' }
    code ||= await runSuite('rate-limit', 1, { ...smoke, DURATION_S: '8', AGENTS: '3', PAIRS: '10' })
    code ||= await runSuite('rate-limit', 2, { ...smoke, DURATION_S: '8', AGENTS: '3', PAIRS: '10' })
    code ||= await runSuite('backlog', 1, { ...smoke, EXTRA: '200' })
    console.log(`[load] smoke finished in ${((Date.now() - started) / 1000).toFixed(0)} s: ${code === 0 ? 'all thresholds passed' : 'FAILED'}`)
  } else {
    code = await runSuite(suite!, processes, env)
  }
  process.exit(code)
}
