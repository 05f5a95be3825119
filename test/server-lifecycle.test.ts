import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AgentChatClient } from 'agentchatme'
import { loadConfig } from '../src/config.ts'
import { startServer } from '../src/boot.ts'
import { api, backends, createTestDatabase, readCode, registerAgent, startTestServer, uniqueHandle, type TestServer } from './harness.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(60_000)

describe('embedded default', () => {
  test('data survives a restart on the same DATA_DIR', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ac-restart-'))
    const env = { PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, IP_RATE_LIMITS: 'off', LOG_LEVEL: 'silent' }
    let running = await startServer(loadConfig(env))
    const s1 = { url: running.url, mailDir: join(dataDir, 'mail'), running } as TestServer
    const a = await registerAgent(s1, uniqueHandle('keep'), { display_name: 'Persistent' })
    const b = await registerAgent(s1)
    await a.client.addContact(b.handle)
    await running.stop()

    running = await startServer(loadConfig(env))
    try {
      const client = new AgentChatClient({ apiKey: a.apiKey, baseUrl: running.url })
      const me = (await client.getMe()) as any
      expect(me.display_name).toBe('Persistent')
      expect((await client.listContacts()).contacts.map((c) => c.handle)).toEqual([b.handle])
    } finally {
      await running.stop()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})

describe('per-IP limits (IP_RATE_LIMITS=on)', () => {
  test('register: 5 an hour per address; X-Forwarded-For is ignored unless from a trusted proxy', async () => {
    const s = await startTestServer('embedded', { IP_RATE_LIMITS: 'on' })
    try {
      const statuses: number[] = []
      for (let i = 0; i < 6; i++) {
        // A spoofed X-Forwarded-For must not buy a fresh bucket.
        const r = await api(s, 'POST', '/v1/register', {
          body: { email: `${uniqueHandle()}@example.test`, handle: uniqueHandle() },
          headers: { 'x-forwarded-for': `203.0.113.${i}` },
        })
        statuses.push(r.status)
        if (i === 5) {
          expect(r.json.code).toBe('RATE_LIMITED')
          expect(r.json.message).toMatch(/^Too many requests\. Try again in \d+ seconds\.$/)
          expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
        }
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429])
      // Recovery has its own bucket (3/hour).
      const rec = []
      for (let i = 0; i < 4; i++) rec.push((await api(s, 'POST', '/v1/agents/recover', { body: { email: `x${i}@example.test` } })).status)
      expect(rec).toEqual([200, 200, 200, 429])
    } finally {
      await s.stop()
    }
  })

  test('behind a trusted proxy each forwarded client has its own bucket', async () => {
    const s = await startTestServer('embedded', { IP_RATE_LIMITS: 'on', TRUSTED_PROXIES: '127.0.0.1,::1,::ffff:127.0.0.1' })
    try {
      const statuses: number[] = []
      for (let i = 0; i < 6; i++) {
        const r = await api(s, 'POST', '/v1/agents/recover', { body: { email: 'nobody@example.test' }, headers: { 'x-forwarded-for': `198.51.100.${i % 2}` } })
        statuses.push(r.status)
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200])
      const fourth = await api(s, 'POST', '/v1/agents/recover', { body: { email: 'nobody@example.test' }, headers: { 'x-forwarded-for': '198.51.100.0' } })
      expect(fourth.status).toBe(429)
    } finally {
      await s.stop()
    }
  })

  test('per-agent limits still hold with IP limits off', async () => {
    const s = await startTestServer('embedded', { IP_RATE_LIMITS: 'off' })
    try {
      const handle = uniqueHandle('ipoff')
      const email = `${handle}@example.test`
      await AgentChatClient.register({ baseUrl: s.url, email, handle })
      const code = await readCode(s.mailDir, email)
      expect(code).toMatch(/^\d{6}$/)
      // The per-email OTP cooldown is not an IP limit.
      const again = await api(s, 'POST', '/v1/register', { body: { email, handle: uniqueHandle() } })
      expect(again.json.code).toBe('OTP_COOLDOWN')
    } finally {
      await s.stop()
    }
  })
})

const hasPostgres = (await backends()).includes('postgres')

describe('health', () => {
  test.if(hasPostgres)('503 degraded when the database goes away', async () => {
    const db = await createTestDatabase()
    const dataDir = mkdtempSync(join(tmpdir(), 'ac-health-'))
    const running = await startServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, DATABASE_URL: db.url, DATABASE_POOL: '2', LOG_LEVEL: 'silent' }))
    try {
      const ok = await fetch(`${running.url}/v1/health`)
      expect(ok.status).toBe(200)
      await db.drop() // terminates the server's connections and removes the database
      const down = await fetch(`${running.url}/v1/health`)
      expect(down.status).toBe(503)
      const body = (await down.json()) as any
      expect(body.status).toBe('degraded')
      expect(body.database.ok).toBe(false)
    } finally {
      await running.stop().catch(() => {})
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  test('503 degraded when Redis is unreachable', async () => {
    const s = await startTestServer('embedded', { REDIS_URL: 'redis://127.0.0.1:6390' })
    try {
      const r = await api(s, 'GET', '/v1/health')
      expect(r.status).toBe(503)
      expect(r.json.status).toBe('degraded')
      expect(r.json.pubsub.ok).toBe(false)
      expect(r.json.database.ok).toBe(true)
    } finally {
      await s.stop()
    }
  }, 20_000)
})
