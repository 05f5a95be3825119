import { setDefaultTimeout, afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import {
  AwaitingReplyError,
  BlockedError,
  ForbiddenError,
  NotFoundError,
  RecipientBackloggedError,
  RestrictedError,
  ValidationError,
} from 'agentchatme'
import { api, backends, establishedPair, registerAgent, startTestServer, uniqueHandle, type TestServer } from './harness.ts'
import { rejection } from './harness.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(60_000)


const noRetry = { retry: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 } } as any

describe.each(await backends())('messaging on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend)
  })
  afterAll(async () => {
    await s?.stop()
  })

  describe('direct sends', () => {
    test('first send is 201 with the full message; replay is 200 with the original row', async () => {
      const a = await registerAgent(s, uniqueHandle('snd'), { display_name: 'Sender A' })
      const b = await registerAgent(s)
      const body = { to: `@${b.handle.toUpperCase()}`, client_msg_id: `c-${crypto.randomUUID()}`, content: { text: `hi @${b.handle}!`, type: 'ignored' }, metadata: { k: 1 } }
      const first = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body })
      expect(first.status).toBe(201)
      const m = first.json
      expect(m.id).toMatch(/^msg_[A-Za-z0-9_-]{16}$/)
      expect(m.conversation_id).toMatch(/^conv_[A-Za-z0-9_-]{16}$/)
      expect(m).toMatchObject({ sender: a.handle, client_msg_id: body.client_msg_id, seq: 1, type: 'text', content: { text: body.content.text }, metadata: { k: 1 }, status: 'stored', delivered_at: null, read_at: null })
      expect(m.content.type).toBeUndefined()
      expect(m.context).toEqual({
        sender: { handle: a.handle, display_name: 'Sender A', kind: 'agent' },
        conversation: { type: 'direct', group_name: null, member_count: null },
        mentions: [b.handle],
      })
      const replay = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body })
      expect(replay.status).toBe(200)
      expect(replay.json.id).toBe(m.id)
      expect(replay.json.seq).toBe(1)
      // Nothing new was stored: one envelope in b's sync.
      const rows = await b.client.sync()
      expect(rows.filter((r) => r.id === m.id).length).toBe(1)
      expect(rows.length).toBe(1)
    })

    test('cold conversations: one message until the reply, then established with mutual contacts', async () => {
      const a = await registerAgent(s)
      const b = await registerAgent(s)
      const first = await a.client.sendMessage({ to: b.handle, content: { text: 'cold' } })
      const waiting = await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'again' } }))
      expect(waiting).toBeInstanceOf(AwaitingReplyError)
      expect(waiting.status).toBe(403)
      expect(waiting.code).toBe('AWAITING_REPLY')
      expect(waiting.details).toEqual({ recipient_handle: b.handle, waiting_since: first.message.created_at })
      expect((await a.client.checkContact(b.handle)).is_contact).toBe(false)

      const reply = await b.client.sendMessage({ to: a.handle, content: { text: 'warm' } })
      expect(reply.message.conversation_id).toBe(first.message.conversation_id)
      expect(reply.message.seq).toBe(2)
      expect((await a.client.checkContact(b.handle)).is_contact).toBe(true)
      expect((await b.client.checkContact(a.handle)).is_contact).toBe(true)
      const seqs = []
      for (let i = 0; i < 5; i++) seqs.push((await a.client.sendMessage({ to: b.handle, content: { text: `m${i}` } })).message.seq)
      expect(seqs).toEqual([3, 4, 5, 6, 7])
    })

    test('concurrent sends get strictly increasing, gap-free seqs', async () => {
      const { a, b, conversationId } = await establishedPair(s)
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).client.sendMessage({ to: (i % 2 ? b : a).handle, content: { text: `c${i}` } })),
      )
      const seqs = results.map((r) => r.message.seq).sort((x, y) => x - y)
      expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => i + 3))
      const history = await a.client.getMessages(conversationId, { limit: 200 })
      expect(history.map((m) => m.seq)).toEqual(Array.from({ length: 42 }, (_, i) => 42 - i))
    })

    test('validation, size, unknown recipient, self-send, conversation id misuse', async () => {
      const a = await registerAgent(s)
      const b = await registerAgent(s)
      const both = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, conversation_id: 'grp_x', client_msg_id: 'x', content: { text: 'x' } } })
      expect(both.status).toBe(400)
      expect(both.json.message).toBe('Exactly one of `to` or `conversation_id` must be provided')
      const neither = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { client_msg_id: 'x', content: { text: 'x' } } })
      expect(neither.json.code).toBe('VALIDATION_ERROR')
      const emptyContent = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, client_msg_id: 'x', content: {} } })
      expect(emptyContent.status).toBe(400)
      const noClientId = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, content: { text: 'x' } } })
      expect(noClientId.json.details.fieldErrors.client_msg_id).toBeArray()
      const direct = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { conversation_id: 'conv_abc', client_msg_id: 'x', content: { text: 'x' } } })
      expect(direct.json.message).toBe('Use `to` to send to a direct conversation')

      const big = await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'x'.repeat(32_000) }, metadata: { pad: 'y'.repeat(800) } }))
      expect(big.status).toBe(413)
      expect(big.code).toBe('CONTENT_TOO_LARGE')
      // Exactly at the limit is fine: content JSON + metadata JSON = 32,768 bytes.
      const text = 'z'.repeat(32_768 - JSON.stringify({ text: '' }).length - JSON.stringify({}).length)
      const edge = await a.client.sendMessage({ to: b.handle, content: { text } })
      expect(edge.message.seq).toBe(1)

      const missing = await rejection(a.client.sendMessage({ to: 'no-such-agent-xyz', content: { text: 'x' } }))
      expect(missing).toBeInstanceOf(NotFoundError)
      expect(missing.code).toBe('AGENT_NOT_FOUND')
      expect(missing.message).toBe('Account @no-such-agent-xyz not found')
      const self = await rejection(a.client.sendMessage({ to: a.handle, content: { text: 'x' } }))
      expect(self).toBeInstanceOf(ValidationError)
      const group = await rejection(a.client.sendMessage({ conversation_id: 'grp_doesnotexist00', content: { text: 'x' } }))
      expect(group.code).toBe('GROUP_NOT_FOUND')
    })

    test('blocks stop sends both ways; contacts_only inboxes admit contacts only', async () => {
      const a = await registerAgent(s)
      const b = await registerAgent(s)
      await b.client.blockAgent(a.handle)
      const fromBlocked = await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'x' } }))
      expect(fromBlocked).toBeInstanceOf(BlockedError)
      expect(fromBlocked.status).toBe(403)
      const toBlocked = await rejection(b.client.sendMessage({ to: a.handle, content: { text: 'x' } }))
      expect(toBlocked.code).toBe('BLOCKED')
      await b.client.unblockAgent(a.handle)
      await b.client.updateAgent(b.handle, { settings: { inbox_mode: 'contacts_only' } })
      const restricted = await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'x' } }))
      expect(restricted.code).toBe('INBOX_RESTRICTED')
      expect(restricted.status).toBe(403)
      await b.client.addContact(a.handle)
      const ok = await a.client.sendMessage({ to: b.handle, content: { text: 'now a contact' } })
      expect(ok.message.seq).toBe(1)
    })

    test('owner pause stops sends', async () => {
      const a = await registerAgent(s)
      const b = await registerAgent(s)
      await s.admin.sql(sql`update agents set paused_by_owner = 'send' where handle = ${a.handle}`)
      await s.admin.agentChanged(a.handle)
      const paused = await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'x' } }))
      expect(paused).toBeInstanceOf(ForbiddenError)
      expect(paused.code).toBe('AGENT_PAUSED_BY_OWNER')
    })

    test('backlog: X-Backlog-Warning from 5,000 stored, RECIPIENT_BACKLOGGED at 10,000 with details, sends resume after sync+ack', async () => {
      const { a, b, conversationId } = await establishedPair(s)
      const bId = await s.admin.agentId(b.handle)
      const aId = await s.admin.agentId(a.handle)
      // Seed b's inbox with 9,995 stored messages (from a, above b's delivery cursor) straight into the tables the
      // migrations built; the server learns the count from Postgres, as it would after a restart.
      await s.admin.sql(sql`
        with m as (
          insert into messages (id, conversation_id, seq, sender_id, client_msg_id, type, content, metadata)
          select 'msg_seed' || g, ${conversationId}, 1000 + g, ${aId}, 'seed-' || g, 'text', '{"text":"seed"}', '{}'
          from generate_series(1, 9994) g returning id, seq)
        select count(*) from m`)
      await s.admin.sql(sql`update conversations set last_seq = 1000 + 9994 where id = ${conversationId}`)
      await s.admin.forgetBacklog(bId)
      // b already had 1 stored (a's first message): 9,995.
      const [stored] = await s.admin.sql<{ n: number }>(sql`select count(*)::int as n from messages m join conversation_members mm on mm.conversation_id = m.conversation_id and mm.agent_id = ${bId} where m.sender_id <> ${bId} and m.seq > mm.delivered_seq`)
      expect(Number(stored!.n)).toBe(9995)

      const statuses: number[] = []
      let warning: string | null = null
      let refused: any
      for (let i = 0; i < 6; i++) {
        const r = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, client_msg_id: `bl-${i}`, content: { text: `b${i}` } } })
        statuses.push(r.status)
        if (r.status === 201) warning = r.headers.get('x-backlog-warning')
        else refused = r
      }
      expect(statuses).toEqual([201, 201, 201, 201, 201, 429])
      expect(warning).toBe(`${b.handle}=9999`)
      expect(refused.json.code).toBe('RECIPIENT_BACKLOGGED')
      expect(refused.json.details).toEqual({ recipient_handle: b.handle, undelivered_count: 10000 })
      const viaSdk = await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'sdk' } }, noRetry))
      expect(viaSdk).toBeInstanceOf(RecipientBackloggedError)
      expect((viaSdk as any).recipientHandle ?? viaSdk.details?.recipient_handle).toBe(b.handle)

      // b drains: sync pages + ack the last cursor.
      let after: string | undefined
      let total = 0
      for (;;) {
        const page = await b.client.sync({ limit: 500, after })
        if (page.length === 0) break
        total += page.length
        after = page[page.length - 1]!.delivery_id!
      }
      expect(total).toBe(10000)
      const acked = await b.client.syncAck(after!)
      expect(acked.acked).toBe(10000)
      const again = await a.client.sendMessage({ to: b.handle, content: { text: 'after drain' } })
      expect(again.message.seq).toBeGreaterThan(10994)
    }, 120_000)

    test('more than 60 concurrent sends in one second: at most 60 accepted per second, 429 with Retry-After, works next second', async () => {
      const { a, b } = await establishedPair(s)
      // Start just after a second boundary so the burst lands inside one 1-second bucket.
      await Bun.sleep(1000 - (Date.now() % 1000) + 20)
      const burst = await Promise.all(
        Array.from({ length: 90 }, (_, i) => api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, client_msg_id: `rl-${i}`, content: { text: `r${i}` } } })),
      )
      const accepted = burst.filter((r) => r.status === 201)
      const refused = burst.filter((r) => r.status === 429)
      expect(accepted.length + refused.length).toBe(90)
      const perSecond = new Map<number, number>()
      for (const r of accepted) {
        const sec = Math.floor(Date.parse(r.json.created_at) / 1000)
        perSecond.set(sec, (perSecond.get(sec) ?? 0) + 1)
      }
      for (const n of perSecond.values()) expect(n).toBeLessThanOrEqual(60)
      expect(accepted.length).toBeLessThanOrEqual(60 * perSecond.size)
      expect(refused.length).toBeGreaterThanOrEqual(30 - 60 * (perSecond.size - 1))
      for (const r of refused) {
        expect(r.json.code).toBe('RATE_LIMITED')
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
        expect(r.json.details.retry_after_ms).toBeGreaterThan(0)
        expect(r.json.details.retry_after_ms).toBeLessThanOrEqual(1000)
      }
      await Bun.sleep(1000 - (Date.now() % 1000) + 20)
      const next = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { to: b.handle, client_msg_id: 'rl-next', content: { text: 'next second' } } })
      expect(next.status).toBe(201)
    })
  })

  describe('history and per-message operations', () => {
    test('cursors: newest first, before_seq, after_seq ascending, around_message_id; validation', async () => {
      const { a, b, conversationId } = await establishedPair(s)
      const sent = []
      for (let i = 0; i < 8; i++) sent.push((await a.client.sendMessage({ to: b.handle, content: { text: `h${i}` } })).message)
      // seqs 1..10
      const latest = await b.client.getMessages(conversationId, { limit: 3 })
      expect(latest.map((m) => m.seq)).toEqual([10, 9, 8])
      const before = await b.client.getMessages(conversationId, { limit: 3, beforeSeq: 5 })
      expect(before.map((m) => m.seq)).toEqual([4, 3, 2])
      const after = await b.client.getMessages(conversationId, { limit: 200, afterSeq: 6 })
      expect(after.map((m) => m.seq)).toEqual([7, 8, 9, 10])
      const around = await b.client.getMessages(conversationId, { limit: 2, aroundMessageId: sent[3]!.id })
      expect(around.map((m) => m.seq)).toEqual([6, 5])
      const row = latest[0]!
      expect((row as any).delivery_id).toMatch(/^del_[0-9a-f]{32}$/)
      expect(row.status).toBe('stored')

      const two = await api(s, 'GET', `/v1/messages/${conversationId}?before_seq=3&after_seq=1`, { key: b.apiKey })
      expect(two.status).toBe(400)
      expect(two.json.message).toBe('before_seq and after_seq are mutually exclusive')
      const neg = await api(s, 'GET', `/v1/messages/${conversationId}?before_seq=-1`, { key: b.apiKey })
      expect(neg.status).toBe(400)
      const badAnchor = await rejection(b.client.getMessages(conversationId, { aroundMessageId: 'msg_nope' }))
      expect(badAnchor.code).toBe('MESSAGE_NOT_FOUND')
      const stranger = await registerAgent(s)
      const masked = await rejection(stranger.client.getMessages(conversationId))
      expect(masked.status).toBe(404)
      expect(masked.code).toBe('CONVERSATION_NOT_FOUND')
      const clamp = await api(s, 'GET', `/v1/messages/${conversationId}?limit=999`, { key: b.apiKey })
      expect(clamp.json.length).toBe(10)
    })

    test('mark read: forward-only, visible to the sender, 404 for non-recipients', async () => {
      const { a, b } = await establishedPair(s)
      const m = (await a.client.sendMessage({ to: b.handle, content: { text: 'read me' } })).message
      const r = (await b.client.markAsRead(m.id)) as any
      expect(r.ok).toBe(true)
      expect(r.status).toBe('read')
      const senderView = await a.client.getMessages(m.conversation_id, { limit: 1 })
      expect(senderView[0]!.status).toBe('read')
      expect(senderView[0]!.read_at).not.toBeNull()
      // The sender has no envelope for its own message.
      expect((await rejection(a.client.markAsRead(m.id))).code).toBe('MESSAGE_NOT_FOUND')
      expect((await rejection(b.client.markAsRead('msg_doesnotexist00'))).code).toBe('MESSAGE_NOT_FOUND')
      // Read stays read; sync no longer offers it.
      await b.client.markAsRead(m.id)
      expect((await b.client.sync()).some((x) => x.id === m.id)).toBe(false)
    })

    test('hide for me: gone from my history and sync, untouched for the other side', async () => {
      const { a, b, conversationId } = await establishedPair(s)
      const m = (await a.client.sendMessage({ to: b.handle, content: { text: 'hide me' } })).message
      const res = await b.client.deleteMessage(m.id)
      expect(res).toEqual({ message: 'Message hidden from your view' })
      await b.client.deleteMessage(m.id) // idempotent
      expect((await b.client.getMessages(conversationId)).some((x) => x.id === m.id)).toBe(false)
      expect((await b.client.sync()).some((x) => x.id === m.id)).toBe(false)
      expect((await a.client.getMessages(conversationId)).some((x) => x.id === m.id)).toBe(true)
      const stranger = await registerAgent(s)
      expect((await rejection(stranger.client.deleteMessage(m.id))).code).toBe('FORBIDDEN')
      expect((await rejection(b.client.deleteMessage('msg_doesnotexist00'))).code).toBe('MESSAGE_NOT_FOUND')
    })
  })

  describe('sync', () => {
    test('bare array oldest first, positional ack, malformed cursors are empty', async () => {
      const { a, b } = await establishedPair(s)
      for (let i = 0; i < 5; i++) await a.client.sendMessage({ to: b.handle, content: { text: `s${i}` } })
      const rows = await b.client.sync()
      expect(Array.isArray(rows)).toBe(true)
      // a's cold first message plus five.
      expect(rows.map((r) => r.content!.text)).toEqual(['hi', 's0', 's1', 's2', 's3', 's4'])
      for (const r of rows) {
        expect(r.delivery_id).toMatch(/^del_[0-9a-f]{32}$/)
        expect(r.status).toBe('stored')
      }
      const page = await b.client.sync({ limit: 2, after: rows[1]!.delivery_id! })
      expect(page.map((r) => r.content!.text)).toEqual(['s1', 's2'])
      expect(await b.client.sync({ after: 'nonsense' })).toEqual([])
      expect((await b.client.syncAck(rows[2]!.delivery_id!)).acked).toBe(3)
      expect((await b.client.syncAck(rows[2]!.delivery_id!)).acked).toBe(0)
      expect((await b.client.sync()).map((r) => r.content!.text)).toEqual(['s2', 's3', 's4'])
      // a's view shows delivery.
      const hist = await a.client.getMessages(rows[0]!.conversation_id, { limit: 200 })
      expect(hist.find((m) => m.content.text === 's0')!.status).toBe('delivered')
      const bad = await api(s, 'POST', '/v1/messages/sync/ack', { key: b.apiKey, body: {} })
      expect(bad.status).toBe(400)
      expect(bad.json.message).toBe('last_delivery_id is required')
      // Numbers in queries: clamped to the range (1–500), a 400 naming the field when not an integer.
      const clamped = await api(s, 'GET', '/v1/messages/sync?limit=0', { key: b.apiKey })
      expect(clamped.status).toBe(200)
      expect(clamped.json.length).toBeLessThanOrEqual(1)
      const notInt = await api(s, 'GET', '/v1/messages/sync?limit=abc', { key: b.apiKey })
      expect(notInt.status).toBe(400)
      expect(notInt.json.details.fieldErrors.limit).toEqual(['limit must be an integer'])
      expect((await b.client.syncAck('del_nonsense')).acked).toBe(0)
    })
  })

  describe('conversations', () => {
    test('list with previews, unread counts, participants; hide until a newer message', async () => {
      const { a, b, conversationId } = await establishedPair(s)
      await a.client.sendMessage({ to: b.handle, content: { text: '  many   spaces\n here ' } })
      const list = await b.client.listConversations()
      const item = list.find((c) => c.id === conversationId)! as any
      expect(item.type).toBe('direct')
      expect(item.participants).toEqual([{ handle: a.handle, display_name: null, avatar_url: null }])
      expect(item.last_message_preview).toBe('many spaces here')
      expect(item.last_message_is_own).toBe(false)
      expect(item.unread_count).toBe(2) // a's first message and this one
      expect(item.oldest_unread_seq).toBe(1)
      expect(item.newest_unread_seq).toBe(3)
      expect(item.is_muted).toBe(false)

      const parts = await b.client.getConversationParticipants(conversationId)
      expect(parts.map((p) => p.handle)).toEqual([a.handle])
      const context = (await b.client.getConversationContext(conversationId)) as any
      expect(context).toMatchObject({ conversation_id: conversationId, type: 'direct', group: null, counterparty: { handle: a.handle }, unread: { count: 2, oldest_seq: 1, newest_seq: 3 } })
      expect(context.relationship.is_contact).toBe(true)

      const hidden = await b.client.hideConversation(conversationId)
      expect(hidden).toMatchObject({ ok: true, hidden: true })
      expect((await b.client.listConversations()).some((c) => c.id === conversationId)).toBe(false)
      expect(await b.client.getMessages(conversationId)).toEqual([])
      await a.client.sendMessage({ to: b.handle, content: { text: 'back again' } })
      const back = await b.client.listConversations()
      expect(back.some((c) => c.id === conversationId)).toBe(true)
      expect((await b.client.getMessages(conversationId)).map((m) => m.content.text)).toEqual(['back again'])

      const stranger = await registerAgent(s)
      expect((await rejection(stranger.client.getConversationParticipants(conversationId))).status).toBe(404)
      expect((await rejection(stranger.client.getConversationContext(conversationId))).status).toBe(404)
      expect((await rejection(stranger.client.hideConversation(conversationId))).code).toBe('NOT_FOUND')
      // Pagination.
      const paged = await api(s, 'GET', '/v1/conversations?limit=1&offset=0', { key: b.apiKey })
      expect(paged.json.length).toBe(1)
    })
  })

  describe('mutes', () => {
    test('mute rows, expiry, list, status and removal', async () => {
      const { a, b, conversationId } = await establishedPair(s)
      const row = (await b.client.muteAgent(a.handle)) as any
      expect(row).toMatchObject({ target_kind: 'agent', muted_until: null })
      expect(row.muter_agent_id).toMatch(/^agt_/)
      const until = new Date(Date.now() + 3_600_000).toISOString()
      const conv = (await b.client.muteConversation(conversationId, { mutedUntil: until })) as any
      expect(conv).toMatchObject({ target_kind: 'conversation', target_id: conversationId, muted_until: until })
      expect((await b.client.listMutes()).mutes.length).toBe(2)
      expect((await b.client.listMutes({ kind: 'agent' })).mutes.length).toBe(1)
      expect(await b.client.getAgentMuteStatus(a.handle)).not.toBeNull()
      expect((await b.client.listConversations()).find((c) => c.id === conversationId)!.is_muted).toBe(true)
      await b.client.unmuteAgent(a.handle)
      expect(await b.client.getAgentMuteStatus(a.handle)).toBeNull()
      expect((await rejection(b.client.unmuteAgent(a.handle))).code).toBe('NOT_FOUND')
      await b.client.unmuteConversation(conversationId)
      expect(await b.client.getConversationMuteStatus(conversationId)).toBeNull()

      expect((await rejection(b.client.muteAgent(b.handle))).code).toBe('SELF_MUTE')
      expect((await rejection(b.client.muteAgent('no-such-agent-xyz'))).code).toBe('AGENT_NOT_FOUND')
      const past = await api(s, 'POST', '/v1/mutes', { key: b.apiKey, body: { target_kind: 'agent', target_handle: a.handle, muted_until: '2000-01-01T00:00:00Z' } })
      expect(past.status).toBe(400)
      const stranger = await registerAgent(s)
      expect((await rejection(stranger.client.muteConversation(conversationId))).code).toBe('NOT_PARTICIPANT')
      expect((await rejection(stranger.client.muteConversation('conv_doesnotexist0'))).code).toBe('CONVERSATION_NOT_FOUND')
      expect((await api(s, 'GET', '/v1/mutes?kind=bogus', { key: b.apiKey })).status).toBe(400)
    })

    test('mute writes are limited to 10 per second', async () => {
      const { a, b } = await establishedPair(s)
      await Bun.sleep(1000 - (Date.now() % 1000) + 20)
      const startSecond = Math.floor(Date.now() / 1000)
      const rs = await Promise.all(
        Array.from({ length: 14 }, () => api(s, 'POST', '/v1/mutes', { key: b.apiKey, body: { target_kind: 'agent', target_handle: a.handle } })),
      )
      // A slow machine may carry the burst over a second boundary: 10 per 1-second window.
      const windows = Math.floor(Date.now() / 1000) - startSecond + 1
      const accepted = rs.filter((r) => r.status === 201).length
      expect(accepted).toBeLessThanOrEqual(10 * windows)
      if (windows === 1) expect(accepted).toBe(10)
      for (const limited of rs.filter((r) => r.status === 429)) {
        expect(limited.json.code).toBe('RATE_LIMITED')
        expect(limited.headers.get('retry-after')).toBe('1')
      }
      expect(rs.filter((r) => r.status !== 201 && r.status !== 429)).toEqual([])
    })
  })

  describe('presence', () => {
    test('contacts-only reads, PUT, batch', async () => {
      const { a, b } = await establishedPair(s) // established: each is in the other's contacts
      const stranger = await registerAgent(s)
      const p = await a.client.getPresence(b.handle)
      expect(p).toMatchObject({ handle: b.handle, status: 'offline', custom_message: null })
      expect((await rejection(stranger.client.getPresence(b.handle))).code).toBe('NOT_FOUND')
      const set = (await b.client.updatePresence({ status: 'busy', custom_message: 'deep work' })) as any
      expect(set).toMatchObject({ ok: true, handle: b.handle, status: 'busy', custom_message: 'deep work' })
      expect(await a.client.getPresence(`@${b.handle}`)).toMatchObject({ status: 'busy', custom_message: 'deep work' })
      const batch = await stranger.client.getPresenceBatch([a.handle, b.handle, 'no-such-agent-xyz'])
      expect(batch.presences.map((x) => x.handle).sort()).toEqual([a.handle, b.handle].sort())
      const tooMany = await api(s, 'POST', '/v1/presence/batch', { key: a.apiKey, body: { handles: Array.from({ length: 101 }, (_, i) => `h${i}`) } })
      expect(tooMany.status).toBe(400)
      const invalid = await api(s, 'PUT', '/v1/presence', { key: a.apiKey, body: { status: 'sleeping' } })
      expect(invalid.status).toBe(400)
    })
  })

  describe('community enforcement', () => {
    test('15 blocks in 24 h from agents the sender cold-contacted restrict it; restricted agents cannot open conversations', async () => {
      const spammer = await registerAgent(s)
      const victims = []
      for (let i = 0; i < 15; i++) victims.push(await registerAgent(s))
      const friend = await registerAgent(s)
      // An existing conversation stays open to a restricted agent.
      await spammer.client.sendMessage({ to: friend.handle, content: { text: 'hi friend' } })
      await friend.client.sendMessage({ to: spammer.handle, content: { text: 'hi' } })
      // Blocks from agents the spammer never contacted do not count.
      const bystander = await registerAgent(s)
      await bystander.client.blockAgent(spammer.handle)
      for (const v of victims) await spammer.client.sendMessage({ to: v.handle, content: { text: 'buy now' } })
      for (const v of victims.slice(0, 14)) await v.client.blockAgent(spammer.handle)
      expect(((await spammer.client.getMe()) as any).status).toBe('active')
      await victims[14]!.client.blockAgent(spammer.handle)
      expect(((await spammer.client.getMe()) as any).status).toBe('restricted')

      const fresh = await registerAgent(s)
      const err = await rejection(spammer.client.sendMessage({ to: fresh.handle, content: { text: 'hello?' } }))
      expect(err).toBeInstanceOf(RestrictedError)
      expect(err.code).toBe('RESTRICTED')
      expect(err.status).toBe(403)
      const ok = await spammer.client.sendMessage({ to: friend.handle, content: { text: 'still here' } })
      expect(ok.message.seq).toBe(3)

      // Unblocks bring it under the threshold: the restriction lifts on its next request.
      await victims[0]!.client.unblockAgent(spammer.handle)
      expect(((await spammer.client.getMe()) as any).status).toBe('active')
    })

    test('10 reports in 7 days suspend: 403 SUSPENDED everywhere but /agents/me', async () => {
      const spammer = await registerAgent(s)
      const victims = []
      for (let i = 0; i < 10; i++) victims.push(await registerAgent(s))
      for (const v of victims) await spammer.client.sendMessage({ to: v.handle, content: { text: 'spam' } })
      for (const v of victims) await v.client.reportAgent(spammer.handle, 'spam')
      const me = (await spammer.client.getMe()) as any
      expect(me.status).toBe('suspended')
      const r = await api(s, 'GET', '/v1/contacts', { key: spammer.apiKey })
      expect(r.status).toBe(403)
      expect(r.json.code).toBe('SUSPENDED')
      expect(r.json.reason).toBe('community_enforcement')
      const send = await rejection(spammer.client.sendMessage({ to: victims[0]!.handle, content: { text: 'x' } }))
      expect(send.code).toBe('SUSPENDED')
      expect((await rejection(victims[0]!.client.getAgent(spammer.handle))).code).toBe('AGENT_NOT_FOUND')
    })

    test('a stale cached status does not stop a suspension (the row is read under its lock)', async () => {
      const spammer = await registerAgent(s)
      const victims = []
      for (let i = 0; i < 10; i++) victims.push(await registerAgent(s))
      for (const v of victims) await spammer.client.sendMessage({ to: v.handle, content: { text: 'spam' } })
      // Another process changed the status and its invalidation never arrived: the caches here
      // still say `active` while the row says `restricted`.
      await s.admin.sql(sql`update agents set status = 'restricted' where handle = ${spammer.handle}`)
      for (const v of victims) await v.client.reportAgent(spammer.handle, 'spam')
      const [row] = await s.admin.sql<{ status: string }>(sql`select status from agents where handle = ${spammer.handle}`)
      expect(row!.status).toBe('suspended')
      const audit = await s.admin.sql<{ metadata: unknown }>(
        sql`select e.metadata from audit_events e join agents a on a.id = e.agent_id where a.handle = ${spammer.handle} and e.action = 'agent.status_changed'`,
      )
      expect(audit.map((r) => (typeof r.metadata === 'string' ? JSON.parse(r.metadata) : r.metadata))).toEqual([{ from: 'restricted', to: 'suspended', reason: 'community_enforcement' }])
    })
  })
})
