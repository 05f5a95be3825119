import { setDefaultTimeout, afterAll, beforeAll, describe, expect, test } from 'bun:test'
import {
  AgentChatClient,
  AgentChatError,
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
  ValidationError,
} from 'agentchatme'
import { api, backends, hasRedisState, clearOtpLog, readCode, registerAgent, startTestServer, uniqueHandle, type TestServer } from './harness.ts'
import { rejection } from './harness.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(60_000)


describe.each(await backends())('foundation on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend)
  })
  afterAll(async () => {
    await s?.stop()
  })

  describe('registration and keys', () => {
    test('register → verify → getMe → updateAgent → getAgent', async () => {
      const handle = uniqueHandle('reg')
      const a = await registerAgent(s, handle, { display_name: 'Reg Agent', description: 'first' })
      expect(a.apiKey).toMatch(/^ac_[A-Za-z0-9_-]{43}$/)
      const me = (await a.client.getMe()) as any
      expect(me.handle).toBe(handle)
      expect(me.display_name).toBe('Reg Agent')
      expect(me.status).toBe('active')
      expect(me.paused_by_owner).toBe('none')
      // The contract's two settings, plus the safeguards' defaults (issue 16: extra keys the SDK ignores).
      expect(me.settings).toEqual({
        inbox_mode: 'open',
        group_invite_policy: 'open',
        loop_damping: { max_turns: 50, window_s: 600 },
        wrap_untrusted: false,
        wake: { from: 'anyone', groups: 'all', quiet_hours: null },
      })
      expect(me.email_masked).toBe(`${handle[0]}****@example.test`)
      expect(me.id).toBeUndefined() // internal ids never leave the server
      expect(me.api_key_hash).toBeUndefined()

      const updated = (await a.client.updateAgent(`@${handle.toUpperCase()}`, {
        display_name: 'Renamed',
        settings: { inbox_mode: 'contacts_only' },
        discoverable: true,
      } as any)) as any
      expect(updated.display_name).toBe('Renamed')
      expect(updated.settings).toMatchObject({ inbox_mode: 'contacts_only', group_invite_policy: 'open' })
      expect(updated.discoverable).toBeUndefined()
      expect(updated.settings.discoverable).toBeUndefined()

      const profile = (await a.client.getAgent(`@${handle}`)) as any
      expect(profile).toMatchObject({ handle, display_name: 'Renamed', description: 'first', status: 'active', avatar_url: null })
      expect(profile.email).toBeUndefined()
    })

    test('the verify body carries the agent and a key that is stored only as a hash', async () => {
      const handle = uniqueHandle('hash')
      const email = `${handle}@Example.TEST`
      const { pending_id } = await AgentChatClient.register({ baseUrl: s.url, email: ` ${email} `.trim(), handle })
      expect(pending_id).toMatch(/^pnd_[A-Za-z0-9_-]{16}$/)
      const code = await readCode(s.mailDir, email.toLowerCase())
      const r = await api(s, 'POST', '/v1/register/verify', { body: { pending_id, code } })
      expect(r.status).toBe(201)
      expect(r.json.agent.handle).toBe(handle)
      expect(r.json.agent.email).toBe(email.toLowerCase())
      const rows = await s.admin.sql<{ api_key_hash: string }>(
        (await import('drizzle-orm')).sql`select api_key_hash from agents where handle = ${handle}`,
      )
      expect(rows[0]!.api_key_hash).toMatch(/^[0-9a-f]{64}$/)
      expect(rows[0]!.api_key_hash).not.toContain(r.json.api_key)
      // The code works once.
      const again = await api(s, 'POST', '/v1/register/verify', { body: { pending_id, code } })
      expect(again.status).toBe(400)
      expect(again.json.code).toBe('EXPIRED')
    })

    test('taken, reserved, malformed and uppercase handles', async () => {
      const a = await registerAgent(s)
      const taken = await rejection(AgentChatClient.register({ baseUrl: s.url, email: 'other@example.test', handle: a.handle }))
      expect(taken.status).toBe(409)
      expect(taken.code).toBe('HANDLE_TAKEN')

      for (const h of ['admin', 'chatfather', 'openai', 'null']) {
        const e = await rejection(AgentChatClient.register({ baseUrl: s.url, email: `${uniqueHandle()}@example.test`, handle: h }))
        expect(e.code).toBe('INVALID_HANDLE')
        expect(e.status).toBe(400)
      }
      for (const h of ['1abc', 'ab--cd', 'abc-']) {
        const e = await rejection(AgentChatClient.register({ baseUrl: s.url, email: `${uniqueHandle()}@example.test`, handle: h }))
        expect(e.code).toBe('INVALID_HANDLE')
      }
      const upper = await rejection(AgentChatClient.register({ baseUrl: s.url, email: 'u@example.test', handle: 'Alice' }))
      expect(upper).toBeInstanceOf(ValidationError)
      expect(upper.code).toBe('VALIDATION_ERROR')
      expect((upper.details as any).fieldErrors.handle).toBeArray()
      const short = await api(s, 'POST', '/v1/register', { body: { email: 'not-an-email', handle: 'ab' } })
      expect(short.status).toBe(400)
      expect(Object.keys(short.json.details.fieldErrors).sort()).toEqual(['email', 'handle'])
    })

    test('email taken while live; freed by deletion; exhausted after three registrations', async () => {
      const handle = uniqueHandle('mail')
      const a = await registerAgent(s, handle)
      const taken = await rejection(AgentChatClient.register({ baseUrl: s.url, email: a.email, handle: uniqueHandle() }))
      expect(taken.code).toBe('EMAIL_TAKEN')
      expect(taken.status).toBe(409)

      await a.client.deleteAgent(handle)
      expect(await rejection(a.client.getMe())).toBeInstanceOf(UnauthorizedError)
      const gone = await rejection(a.client.getAgent(handle))
      expect(gone).toBeInstanceOf(NotFoundError)
      expect(gone.code).toBe('AGENT_NOT_FOUND')
      // Handle retired forever.
      const retired = await rejection(AgentChatClient.register({ baseUrl: s.url, email: 'x@example.test', handle }))
      expect(retired.code).toBe('HANDLE_TAKEN')

      // The email may register again (2nd and 3rd lifetime registrations) …
      const second = await reRegister(a.email)
      await second.client.deleteAgent(second.handle)
      const third = await reRegister(a.email)
      await third.client.deleteAgent(third.handle)
      // … but not a fourth time.
      const exhausted = await rejection(AgentChatClient.register({ baseUrl: s.url, email: a.email, handle: uniqueHandle() }))
      expect(exhausted.code).toBe('EMAIL_EXHAUSTED')
      expect(exhausted.status).toBe(409)
    })

    async function reRegister(email: string) {
      await clearOtpLog(s, email)
      const handle = uniqueHandle('again')
      const started = Date.now() - 5
      const { pending_id } = await AgentChatClient.register({ baseUrl: s.url, email, handle })
      const code = await readCode(s.mailDir, email, started)
      const { client } = await AgentChatClient.verify(pending_id, code, { baseUrl: s.url })
      return { handle, client }
    }

    test('wrong code, then exhausted attempts burn the pending id', async () => {
      const handle = uniqueHandle('otp')
      const email = `${handle}@example.test`
      const { pending_id } = await AgentChatClient.register({ baseUrl: s.url, email, handle })
      const code = await readCode(s.mailDir, email)
      const wrong = code === '000000' ? '111111' : '000000'
      for (let i = 0; i < 5; i++) {
        const e = await rejection(AgentChatClient.verify(pending_id, wrong, { baseUrl: s.url }))
        expect(e.code).toBe('INVALID_CODE')
        expect(e.status).toBe(400)
      }
      const sixth = await rejection(AgentChatClient.verify(pending_id, code, { baseUrl: s.url }))
      expect(sixth.code).toBe('OTP_ATTEMPTS_EXHAUSTED')
      expect(sixth.status).toBe(429)
      const later = await rejection(AgentChatClient.verify(pending_id, code, { baseUrl: s.url }))
      expect(later.code).toBe('EXPIRED')
      const unknown = await rejection(AgentChatClient.verify('pnd_doesnotexist00', '123456', { baseUrl: s.url }))
      expect(unknown.code).toBe('EXPIRED')
    })

    test('OTP cooldown per email answers 429 with Retry-After', async () => {
      const email = `${uniqueHandle('cool')}@example.test`
      await AgentChatClient.register({ baseUrl: s.url, email, handle: uniqueHandle() })
      const r = await api(s, 'POST', '/v1/register', { body: { email, handle: uniqueHandle() } })
      expect(r.status).toBe(429)
      expect(r.json.code).toBe('OTP_COOLDOWN')
      const retry = Number(r.headers.get('retry-after'))
      expect(retry).toBeGreaterThanOrEqual(1)
      expect(retry).toBeLessThanOrEqual(60)
    })

    test('bad keys are 401 UNAUTHORIZED in the flat envelope', async () => {
      const bad = new AgentChatClient({ apiKey: 'ac_not-a-real-key', baseUrl: s.url, retry: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 } as any })
      const e = await rejection(bad.getMe())
      expect(e).toBeInstanceOf(UnauthorizedError)
      expect(e.code).toBe('UNAUTHORIZED')
      const raw = await api(s, 'GET', '/v1/agents/me')
      expect(raw.status).toBe(401)
      expect(raw.json).toEqual({ code: 'UNAUTHORIZED', message: 'Invalid API key' })
    })

    test('recover: same answer for unknown emails; verify mints a new key and kills the old one', async () => {
      const unknown = await AgentChatClient.recover('nobody-here@example.test', { baseUrl: s.url })
      expect(unknown.pending_id).toBeUndefined()
      expect(unknown.message).toBe('If an account is registered with this email, a verification code has been sent.')

      const a = await registerAgent(s)
      await clearOtpLog(s, a.email)
      const started = Date.now() - 5
      const r = await AgentChatClient.recover(a.email, { baseUrl: s.url })
      expect(r.message).toBe(unknown.message)
      expect(r.pending_id).toMatch(/^pnd_/)
      const code = await readCode(s.mailDir, a.email, started)
      const rv = await AgentChatClient.recoverVerify(r.pending_id!, code, { baseUrl: s.url })
      expect(rv.handle).toBe(a.handle)
      expect(rv.apiKey).not.toBe(a.apiKey)
      expect(await rejection(a.client.getMe())).toBeInstanceOf(UnauthorizedError)
      expect(((await rv.client.getMe()) as any).handle).toBe(a.handle)
    })

    test('rotate-key: own handle only; verify swaps the key', async () => {
      const a = await registerAgent(s)
      const b = await registerAgent(s)
      const foreign = await rejection(a.client.rotateKey(b.handle))
      expect(foreign).toBeInstanceOf(ForbiddenError)
      expect(foreign.code).toBe('FORBIDDEN')

      await clearOtpLog(s, a.email)
      const started = Date.now() - 5
      const { pending_id } = await a.client.rotateKey(`@${a.handle}`)
      const code = await readCode(s.mailDir, a.email, started)
      // b cannot complete a's rotation.
      const stolen = await rejection(b.client.rotateKeyVerify(b.handle, pending_id, code))
      expect(stolen.code).toBe('FORBIDDEN')
      const wrong = await rejection(a.client.rotateKeyVerify(a.handle, pending_id, code === '000000' ? '000001' : '000000'))
      expect(wrong.code).toBe('INVALID_CODE')
      const { api_key } = await a.client.rotateKeyVerify(a.handle, pending_id, code)
      expect(api_key).not.toBe(a.apiKey)
      expect(await rejection(a.client.getMe())).toBeInstanceOf(UnauthorizedError)
      const fresh = new AgentChatClient({ apiKey: api_key, baseUrl: s.url })
      expect(((await fresh.getMe()) as any).handle).toBe(a.handle)
    })

    test('update and delete are own-handle only', async () => {
      const a = await registerAgent(s)
      const b = await registerAgent(s)
      const upd = await rejection(a.client.updateAgent(b.handle, { display_name: 'hijack' }))
      expect(upd.code).toBe('FORBIDDEN')
      expect(upd.status).toBe(403)
      const del = await rejection(a.client.deleteAgent(b.handle))
      expect(del.code).toBe('FORBIDDEN')
      const tooLong = await rejection(a.client.updateAgent(a.handle, { display_name: 'x'.repeat(101) }))
      expect(tooLong.code).toBe('VALIDATION_ERROR')
      expect(((await b.client.getMe()) as any).display_name).toBeNull()
    })
  })

  describe('directory', () => {
    test('prefix search with in_contacts, pagination and validation', async () => {
      const prefix = `dir${Date.now().toString(36)}`
      const me = await registerAgent(s, `${prefix}-me`)
      const others: Awaited<ReturnType<typeof registerAgent>>[] = []
      for (let i = 0; i < 5; i++) others.push(await registerAgent(s, `${prefix}-o${i}`))
      await me.client.addContact(others[2]!.handle)

      const page = await me.client.searchAgents(`@${prefix.toUpperCase()}-o`, { limit: 2 })
      expect(page.total).toBe(5)
      expect(page.agents.map((a) => a.handle)).toEqual([`${prefix}-o0`, `${prefix}-o1`])
      const all: any[] = []
      for await (const a of me.client.searchAgentsAll(`${prefix}-o`, { pageSize: 2 })) all.push(a)
      expect(all.map((a) => a.handle)).toEqual(others.map((o) => o.handle))
      expect(all.find((a) => a.handle === others[2]!.handle)!.in_contacts).toBe(true)
      expect(all.filter((a) => a.in_contacts).length).toBe(1)

      // Deleted agents vanish from the directory.
      await others[4]!.client.deleteAgent(others[4]!.handle)
      expect((await me.client.searchAgents(`${prefix}-o`)).total).toBe(4)

      // LIKE wildcards are literal.
      expect((await me.client.searchAgents('%%')).total).toBe(0)
      const short = await rejection(me.client.searchAgents('a'))
      expect(short.code).toBe('VALIDATION_ERROR')
      expect(short.message).toBe('Query must be at least 2 characters')
      const anon = await api(s, 'GET', `/v1/directory?q=${prefix}`)
      expect(anon.status).toBe(401)
      const clamped = await api(s, 'GET', `/v1/directory?q=${prefix}&limit=500`, { key: me.apiKey })
      expect(clamped.json.limit).toBe(50)
    })

    test('per-agent limit of 60 searches a minute answers 429 with Retry-After', async () => {
      const me = await registerAgent(s)
      const results = []
      for (let i = 0; i < 61; i++) results.push(await api(s, 'GET', '/v1/directory?q=zz', { key: me.apiKey }))
      const limited = results.filter((r) => r.status === 429)
      // A minute boundary may fall inside the loop; at most one request can then slip into the next window.
      expect(limited.length).toBeLessThanOrEqual(1)
      expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(60)
      let last = results[60]!
      if (last.status === 200) {
        for (let i = 0; i < 61 && last.status === 200; i++) last = await api(s, 'GET', '/v1/directory?q=zz', { key: me.apiKey })
      }
      expect(last.status).toBe(429)
      expect(last.json.code).toBe('RATE_LIMITED')
      expect(Number(last.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(last.json.details.retry_after_ms).toBeGreaterThan(0)
    })
  })

  describe('contacts, blocks and reports', () => {
    test('add, list, check, notes, remove', async () => {
      const me = await registerAgent(s)
      const [b, c] = [await registerAgent(s, uniqueHandle('bb')), await registerAgent(s, uniqueHandle('cc'))]
      const added = (await me.client.addContact(`@${c.handle.toUpperCase()}`)) as any
      expect(added).toMatchObject({ handle: c.handle, notes: null, avatar_url: null })
      expect(Date.parse(added.added_at)).toBeGreaterThan(0)
      await me.client.addContact(b.handle)
      // Adding twice is harmless.
      await me.client.addContact(b.handle)

      const list = await me.client.listContacts()
      expect(list.total).toBe(2)
      expect(list.contacts.map((x) => x.handle)).toEqual([b.handle, c.handle])
      const page2 = await me.client.listContacts({ limit: 1, offset: 1 })
      expect(page2.contacts.map((x) => x.handle)).toEqual([c.handle])
      expect(page2).toMatchObject({ total: 2, limit: 1, offset: 1 })

      await me.client.updateContactNotes(b.handle, 'met at the conference')
      const check = await me.client.checkContact(`@${b.handle}`)
      expect(check.is_contact).toBe(true)
      expect(check.notes).toBe('met at the conference')
      const notContact = await b.client.checkContact(me.handle)
      expect(notContact).toEqual({ is_contact: false, added_at: null, notes: null })
      const unknown = await me.client.checkContact('no-such-agent-xyz')
      expect(unknown.is_contact).toBe(false)

      const notesOnStranger = await rejection(b.client.updateContactNotes(c.handle, 'x'))
      expect(notesOnStranger.code).toBe('NOT_FOUND')
      const notesUnknown = await rejection(b.client.updateContactNotes('no-such-agent-xyz', 'x'))
      expect(notesUnknown.code).toBe('AGENT_NOT_FOUND')
      const tooLong = await rejection(me.client.updateContactNotes(b.handle, 'x'.repeat(1001)))
      expect(tooLong.code).toBe('VALIDATION_ERROR')

      await me.client.removeContact(c.handle)
      const removeAgain = await rejection(me.client.removeContact(c.handle))
      expect(removeAgain.code).toBe('NOT_FOUND')
      expect((await me.client.listContacts()).total).toBe(1)

      const self = await rejection(me.client.addContact(me.handle))
      expect(self.code).toBe('VALIDATION_ERROR')
      const missing = await rejection(me.client.addContact('no-such-agent-xyz'))
      expect(missing.code).toBe('AGENT_NOT_FOUND')
      expect(missing.status).toBe(404)
      const noHandle = await api(s, 'POST', '/v1/contacts', { key: me.apiKey, body: {} })
      expect(noHandle.status).toBe(400)
      expect(noHandle.json.code).toBe('VALIDATION_ERROR')
    })

    test('block, unblock, report (which blocks), duplicates and self', async () => {
      const me = await registerAgent(s)
      const other = await registerAgent(s)
      await me.client.blockAgent(other.handle)
      await me.client.blockAgent(`@${other.handle}`) // re-block is a no-op success
      const selfBlock = await rejection(me.client.blockAgent(me.handle))
      expect(selfBlock.code).toBe('VALIDATION_ERROR')
      expect(selfBlock.status).toBe(400)
      await me.client.unblockAgent(other.handle)
      const notBlocked = await rejection(me.client.unblockAgent(other.handle))
      expect(notBlocked.code).toBe('NOT_FOUND')

      await me.client.reportAgent(other.handle, 'spam')
      // The report blocked them: unblocking works once.
      await me.client.unblockAgent(other.handle)
      const dup = await rejection(me.client.reportAgent(other.handle))
      expect(dup.code).toBe('ALREADY_REPORTED')
      expect(dup.status).toBe(409)
      const selfReport = await rejection(me.client.reportAgent(me.handle))
      expect(selfReport.code).toBe('VALIDATION_ERROR')
      const unknown = await rejection(me.client.blockAgent('no-such-agent-xyz'))
      expect(unknown.code).toBe('AGENT_NOT_FOUND')
    })

    test('system agents cannot be blocked or reported', async () => {
      const me = await registerAgent(s)
      const sys = await registerAgent(s, uniqueHandle('sys'))
      const { sql } = await import('drizzle-orm')
      await s.admin.sql(sql`update agents set is_system = true where handle = ${sys.handle}`)
      await s.admin.agentChanged(sys.handle)
      expect((await rejection(me.client.blockAgent(sys.handle))).code).toBe('SYSTEM_AGENT_PROTECTED')
      expect((await rejection(me.client.reportAgent(sys.handle))).code).toBe('SYSTEM_AGENT_PROTECTED')
      expect((await rejection(sys.client.deleteAgent(sys.handle))).code).toBe('SYSTEM_AGENT_PROTECTED')
    })
  })

  describe('HTTP conventions', () => {
    test('X-Request-Id is echoed up to 128 chars, generated otherwise', async () => {
      const echoed = await api(s, 'GET', '/', { headers: { 'x-request-id': 'trace-abc-123' } })
      expect(echoed.headers.get('x-request-id')).toBe('trace-abc-123')
      const long = await api(s, 'GET', '/', { headers: { 'x-request-id': 'x'.repeat(129) } })
      expect(long.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
      const err = await api(s, 'GET', '/v1/nope')
      expect(err.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
      const me = await registerAgent(s)
      let seen: string | null = null
      try {
        await me.client.getAgent('no-such-agent-xyz')
      } catch (e) {
        seen = (e as AgentChatError).requestId
      }
      expect(seen).toMatch(/^[0-9a-f-]{36}$/)
    })

    test('unknown routes, malformed JSON and wrong types use the flat envelope', async () => {
      const nf = await api(s, 'GET', '/v1/definitely/not/here')
      expect(nf.status).toBe(404)
      expect(nf.json).toEqual({ code: 'NOT_FOUND', message: 'Route not found' })
      const bad = await api(s, 'POST', '/v1/register', { raw: '{"email": ' })
      expect(bad.status).toBe(400)
      expect(bad.json).toEqual({ code: 'VALIDATION_ERROR', message: 'Invalid JSON body' })
      const me = await registerAgent(s)
      const wrongType = await api(s, 'GET', '/v1/contacts?limit=abc', { key: me.apiKey })
      expect(wrongType.status).toBe(400)
      expect(wrongType.json.code).toBe('VALIDATION_ERROR')
      expect(wrongType.json.details.fieldErrors.limit).toBeArray()
    })

    test('CORS preflight and exposed headers', async () => {
      const res = await fetch(`${s.url}/v1/messages`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,idempotency-key' },
      })
      expect(res.status).toBe(204)
      expect(res.headers.get('access-control-allow-origin')).toBe('*')
      const allowed = res.headers.get('access-control-allow-headers')!.toLowerCase()
      for (const h of ['authorization', 'content-type', 'idempotency-key', 'x-agentchat-client', 'x-agentchat-client-version']) expect(allowed).toContain(h)
      expect(res.headers.get('access-control-max-age')).toBe('600')
      expect(res.headers.get('access-control-allow-credentials')).toBeNull()
      const normal = await api(s, 'GET', '/')
      const exposed = normal.headers.get('access-control-expose-headers')!
      for (const h of ['Retry-After', 'X-Backlog-Warning', 'Idempotent-Replay', 'X-Request-Id', 'Location']) expect(exposed).toContain(h)
    })

    test('Idempotency-Key: replay, conflict, invalid key, per-agent scope', async () => {
      const me = await registerAgent(s)
      const other = await registerAgent(s)
      const target = await registerAgent(s)
      const key = `idem-${crypto.randomUUID()}`
      const first = await api(s, 'POST', `/v1/contacts/${target.handle}/report`, { key: me.apiKey, body: { reason: 'spam' }, headers: { 'idempotency-key': key } })
      expect(first.status).toBe(200)
      expect(first.headers.get('idempotent-replay')).toBeNull()
      // Without the middleware this would be 409 ALREADY_REPORTED; the replay returns the first answer.
      const replay = await api(s, 'POST', `/v1/contacts/${target.handle}/report`, { key: me.apiKey, body: { reason: 'spam' }, headers: { 'idempotency-key': key } })
      expect(replay.status).toBe(200)
      expect(replay.json).toEqual(first.json)
      expect(replay.headers.get('idempotent-replay')).toBe('true')
      const conflict = await api(s, 'POST', `/v1/contacts/${target.handle}/report`, { key: me.apiKey, body: { reason: 'other' }, headers: { 'idempotency-key': key } })
      expect(conflict.status).toBe(422)
      expect(conflict.json.code).toBe('IDEMPOTENCY_KEY_CONFLICT')
      // Same key, other agent: its own scope, runs for real.
      const scoped = await api(s, 'POST', `/v1/contacts/${target.handle}/report`, { key: other.apiKey, body: { reason: 'spam' }, headers: { 'idempotency-key': key } })
      expect(scoped.status).toBe(200)
      expect(scoped.headers.get('idempotent-replay')).toBeNull()
      const invalid = await api(s, 'POST', `/v1/contacts/${target.handle}/block`, { key: me.apiKey, headers: { 'idempotency-key': 'short' } })
      expect(invalid.status).toBe(400)
      expect(invalid.json.code).toBe('IDEMPOTENCY_KEY_INVALID')
      // Errors below 500 are cached too.
      const k2 = `idem-${crypto.randomUUID()}`
      const e1 = await api(s, 'POST', '/v1/contacts/no-such-agent-xyz/block', { key: me.apiKey, headers: { 'idempotency-key': k2 } })
      const e2 = await api(s, 'POST', '/v1/contacts/no-such-agent-xyz/block', { key: me.apiKey, headers: { 'idempotency-key': k2 } })
      expect(e1.status).toBe(404)
      expect(e2.status).toBe(404)
      expect(e2.headers.get('idempotent-replay')).toBe('true')
    })

    test('SDK with idempotencyKey gets the replayed answer', async () => {
      const me = await registerAgent(s)
      const target = await registerAgent(s)
      const key = `sdk-${crypto.randomUUID()}`
      await me.client.reportAgent(target.handle, 'x', { idempotencyKey: key } as any)
      await me.client.reportAgent(target.handle, 'x', { idempotencyKey: key } as any)
    })

    test('health, banner and OpenAPI docs', async () => {
      const banner = await api(s, 'GET', '/')
      expect(banner.json).toEqual({ name: 'AgentChat API', version: '0.2.0', status: 'alive' })
      const health = await api(s, 'GET', '/v1/health')
      expect(health.status).toBe(200)
      expect(health.json.status).toBe('ok')
      expect(health.json.database.ok).toBe(true)
      if (hasRedisState(backend)) expect(health.json.pubsub.ok).toBe(true)
      else expect(health.json.pubsub).toBeUndefined()

      const spec = (await api(s, 'GET', '/v1/openapi.json')).json
      expect(spec.openapi).toMatch(/^3\.1/)
      expect(spec.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' })
      const register = spec.paths['/v1/register'].post
      expect(register.requestBody.content['application/json'].schema.properties.handle).toBeDefined()
      expect(register.responses['200']).toBeDefined()
      expect(register.responses['409'].description).toContain('HANDLE_TAKEN')
      const me = spec.paths['/v1/agents/me'].get
      expect(me.security).toEqual([{ bearer: [] }, { apiKey: [] }])
      expect(me.responses['401'].description).toContain('UNAUTHORIZED')
      for (const p of ['/v1/contacts/{handle}/block', '/v1/directory', '/v1/agents/{handle}/rotate-key/verify', '/v1/health']) {
        expect(spec.paths[p]).toBeDefined()
      }
      const ui = await fetch(`${s.url}/docs`)
      expect(ui.status).toBe(200)
      expect(await ui.text()).toContain('/v1/openapi.json')
      const asset = await fetch(`${s.url}/docs/swagger-ui-bundle.js`)
      expect(asset.status).toBe(200)
    })
  })
})
