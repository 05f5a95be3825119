import { setDefaultTimeout, afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { ForbiddenError, GroupDeletedError, NotFoundError } from 'agentchatme'
import { api, backends, registerAgent, startTestServer, WsProbe, type Registered, type TestServer } from './harness.ts'
import { rejection } from './harness.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(60_000)


describe.each(await backends())('groups on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend)
  })
  afterAll(async () => {
    await s?.stop()
  })

  /** A group created by `owner` with the others invited and joined, in order. */
  async function groupWith(owner: Registered, ...others: Registered[]) {
    const { group } = await owner.client.createGroup({ name: 'Team', description: 'the team', member_handles: others.map((o) => o.handle) })
    for (const o of others) {
      const invite = (await o.client.listGroupInvites()).find((i) => i.group_id === group.id)!
      await o.client.acceptGroupInvite(invite.id)
    }
    return group.id
  }

  test('create: creator is the only member, listed handles get invites, failures are left out', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const res = await a.client.createGroup({ name: 'Crew', member_handles: [`@${b.handle.toUpperCase()}`, b.handle, c.handle, a.handle, 'nobody-here-x'] })
    expect(res.group).toMatchObject({ name: 'Crew', member_count: 1, created_by: a.handle, your_role: 'admin', settings: { who_can_invite: 'admin' } })
    expect(res.group.id).toMatch(/^grp_/)
    expect(res.group.members.map((m) => m.handle)).toEqual([a.handle])
    expect(res.add_results.map((r) => [r.handle, r.outcome])).toEqual([
      [b.handle, 'invited'],
      [c.handle, 'invited'],
    ])
    const invites = await b.client.listGroupInvites()
    expect(invites).toHaveLength(1)
    expect(invites[0]).toMatchObject({ group_id: res.group.id, group_name: 'Crew', inviter_handle: a.handle, group_member_count: 1 })
    const bad = await api(s, 'POST', '/v1/groups', { key: a.apiKey, body: { name: '' } })
    expect(bad.status).toBe(400)
    // Non-members see a masked 404.
    const masked = await rejection(b.client.getGroup(res.group.id))
    expect(masked.code).toBe('GROUP_NOT_FOUND')
    expect(masked.status).toBe(404)
  })

  test('invites: accept joins (member_joined from the inviter), reject, unknown ids, policy, blocks, already a member', async () => {
    const [a, b, c, d, e] = [await registerAgent(s), await registerAgent(s), await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const id = await groupWith(a, b)
    const detail = await b.client.getGroup(id)
    expect(detail.members.map((m) => [m.handle, m.role])).toEqual([
      [a.handle, 'admin'],
      [b.handle, 'member'],
    ])
    expect(detail.your_role).toBe('member')
    const joinedMsg = (await a.client.getMessages(id, { limit: 5 })).find((m) => m.type === 'system')!
    expect(joinedMsg.sender).toBe(a.handle)
    expect(joinedMsg.client_msg_id).toBe(`sys_${joinedMsg.id}`)
    expect(joinedMsg.content.data).toEqual({ schema_version: 1, event: 'member_joined', agent_handle: b.handle })

    const again = await a.client.addGroupMember(id, b.handle)
    expect(again.outcome).toBe('already_member')
    const inv = await a.client.addGroupMember(id, c.handle)
    expect(inv.outcome).toBe('invited')
    expect((await a.client.addGroupMember(id, c.handle)).invite_id).toBe(inv.invite_id) // existing invite returned
    await c.client.rejectGroupInvite(inv.invite_id!)
    expect((await rejection(c.client.acceptGroupInvite(inv.invite_id!))).code).toBe('INVITE_NOT_FOUND')
    expect((await rejection(b.client.acceptGroupInvite('gri_nope00000000000'))).code).toBe('INVITE_NOT_FOUND')

    await d.client.updateAgent(d.handle, { settings: { group_invite_policy: 'contacts_only' } })
    expect((await rejection(a.client.addGroupMember(id, d.handle))).code).toBe('INBOX_RESTRICTED')
    await d.client.addContact(a.handle)
    expect((await a.client.addGroupMember(id, d.handle)).outcome).toBe('invited')
    await e.client.blockAgent(a.handle)
    expect((await rejection(a.client.addGroupMember(id, e.handle))).code).toBe('BLOCKED')
    expect((await rejection(a.client.addGroupMember(id, a.handle))).code).toBe('VALIDATION_ERROR')
    expect((await rejection(a.client.addGroupMember(id, 'nobody-here-x'))).code).toBe('AGENT_NOT_FOUND')
    // Non-admins cannot add.
    const nonAdmin = await rejection(b.client.addGroupMember(id, c.handle))
    expect(nonAdmin).toBeInstanceOf(ForbiddenError)
  })

  test('group.invite.received reaches the invitee live', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const ws = await new WsProbe(s.url).hello(b.apiKey)
    const { group } = await a.client.createGroup({ name: 'Live', member_handles: [b.handle] })
    await ws.until(() => ws.ofType('group.invite.received').length === 1, 'invite frame')
    expect(ws.ofType('group.invite.received')[0]!.payload).toMatchObject({ group_id: group.id, group_name: 'Live', inviter_handle: a.handle })
    ws.close()
  })

  test('messages: every active member but the sender gets them; the join point holds in history, sync and live push', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const id = await groupWith(a, b)
    const early = await a.client.sendMessage({ conversation_id: id, content: { text: 'before c' } })
    const bws = await new WsProbe(s.url).hello(b.apiKey)
    const inv = await a.client.addGroupMember(id, c.handle)
    await c.client.acceptGroupInvite(inv.invite_id!)
    const cws = await new WsProbe(s.url).hello(c.apiKey)
    const late = await b.client.sendMessage({ conversation_id: id, content: { text: `after c @${c.handle}` } })
    expect(late.message.context!.conversation).toEqual({ type: 'group', group_name: 'Team', member_count: 3 })
    expect(late.message.context!.mentions).toEqual([c.handle])
    await cws.until(() => cws.ofType('message.new').some((f) => f.payload.id === late.message.id), 'late on c')
    await bws.until(() => bws.ofType('message.new').some((f) => f.payload.id === early.message.id), 'early on b (drain)')
    expect(cws.ofType('message.new').some((f) => f.payload.id === early.message.id)).toBe(false)
    expect(bws.ofType('message.new').some((f) => f.payload.id === late.message.id)).toBe(false) // not echoed to the sender
    const cHistory = await c.client.getMessages(id, { limit: 50 })
    expect(cHistory.some((m) => m.id === early.message.id)).toBe(false)
    expect(cHistory.some((m) => m.id === late.message.id)).toBe(true)
    const cSync = await c.client.sync()
    expect(cSync.some((r) => r.id === early.message.id)).toBe(false)
    // Own messages in a group carry no envelope.
    const own = (await b.client.getMessages(id, { limit: 1 }))[0]! as any
    expect(own.delivery_id).toBeNull()
    // Conversation list entry for the group.
    const item = (await c.client.listConversations()).find((x) => x.id === id)! as any
    expect(item).toMatchObject({ type: 'group', participants: [], group_name: 'Team', group_member_count: 3 })
    const parts = await c.client.getConversationParticipants(id)
    expect(parts.map((p) => p.handle).sort()).toEqual([a.handle, b.handle, c.handle].sort())
    const context = (await c.client.getConversationContext(id)) as any
    expect(context.group).toMatchObject({ name: 'Team', member_count: 3, your_role: 'member' })
    bws.close()
    cws.close()
  })

  test('group sends: non-members 404, more than 20/s across senders is refused', async () => {
    const members = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const id = await groupWith(members[0]!, members[1]!, members[2]!)
    const stranger = await registerAgent(s)
    const r = await rejection(stranger.client.sendMessage({ conversation_id: id, content: { text: 'x' } }))
    expect(r.code).toBe('GROUP_NOT_FOUND')
    await Bun.sleep(1000 - (Date.now() % 1000) + 20)
    const rs = await Promise.all(
      Array.from({ length: 36 }, (_, i) =>
        api(s, 'POST', '/v1/messages', { key: members[i % 3]!.apiKey, body: { conversation_id: id, client_msg_id: `g${i}`, content: { text: `g${i}` } } }),
      ),
    )
    const perSecond = new Map<number, number>()
    for (const x of rs.filter((x) => x.status === 201)) {
      const sec = Math.floor(Date.parse(x.json.created_at) / 1000)
      perSecond.set(sec, (perSecond.get(sec) ?? 0) + 1)
    }
    for (const n of perSecond.values()) expect(n).toBeLessThanOrEqual(20)
    const refused = rs.filter((x) => x.status === 429)
    expect(refused.length).toBeGreaterThanOrEqual(36 - 20 * perSecond.size)
    expect(refused[0]!.json.message).toBe('This group is receiving too many messages per second')
    expect(Number(refused[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
  })

  test('members at the backlog cap are skipped and named', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const id = await groupWith(a, b, c)
    const cId = await s.admin.agentId(c.handle)
    const aId = await s.admin.agentId(a.handle)
    await s.admin.sql(sql`
      with m as (
        insert into messages (id, conversation_id, seq, sender_id, client_msg_id, type, content, metadata)
        select 'msg_gb' || g, ${id}, 100000 + g, ${aId}, 'gb-' || g, 'text', '{"text":"x"}', '{}'
        from generate_series(1, 10000) g returning id, seq)
      select count(*) from m`)
    await s.admin.sql(sql`update conversations set last_seq = 200000 where id = ${id}`)
    // The seeded messages are stored for c only: b's cursor is already past them.
    const bId = await s.admin.agentId(b.handle)
    await s.admin.sql(sql`update conversation_members set delivered_seq = 200000 where conversation_id = ${id} and agent_id = ${bId}`)
    await s.admin.forgetBacklog(cId)
    await s.admin.groupChanged(id)
    const r = await api(s, 'POST', '/v1/messages', { key: a.apiKey, body: { conversation_id: id, client_msg_id: 'skip-1', content: { text: 'x' } } })
    expect(r.status).toBe(201)
    expect(r.json.skipped_recipients).toEqual([c.handle])
    expect(r.headers.get('x-backlog-warning')).toBeNull()
    expect((await b.client.sync()).some((x) => x.id === r.json.id)).toBe(true)
  })

  test('update (one system message per changed field), promote, demote, remove, creator protected', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const id = await groupWith(a, b, c)
    const updated = await a.client.updateGroup(id, { name: 'Renamed', description: null })
    expect(updated.name).toBe('Renamed')
    expect(updated.description).toBeNull()
    const sys = (await b.client.getMessages(id, { limit: 2 })).map((m) => m.content.data)
    expect(sys).toEqual([
      { schema_version: 1, event: 'description_changed', actor_handle: a.handle },
      { schema_version: 1, event: 'name_changed', new_name: 'Renamed', actor_handle: a.handle },
    ])
    expect((await rejection(b.client.updateGroup(id, { name: 'x' }))).code).toBe('FORBIDDEN')

    await a.client.promoteGroupMember(id, b.handle)
    expect((await rejection(a.client.promoteGroupMember(id, b.handle))).code).toBe('NOT_MEMBER')
    expect((await b.client.getGroup(id)).your_role).toBe('admin')
    expect((await rejection(b.client.demoteGroupMember(id, a.handle))).code).toBe('FORBIDDEN') // creator
    expect((await rejection(b.client.demoteGroupMember(id, c.handle))).code).toBe('NOT_ADMIN')
    await a.client.demoteGroupMember(id, b.handle)
    expect((await rejection(b.client.removeGroupMember(id, c.handle))).code).toBe('FORBIDDEN')
    expect((await rejection(a.client.removeGroupMember(id, a.handle))).code).toBe('VALIDATION_ERROR')
    expect((await rejection(a.client.removeGroupMember(id, 'nobody-here-x'))).code).toBe('NOT_MEMBER')
    await a.client.removeGroupMember(id, c.handle)
    const removed = (await a.client.getMessages(id, { limit: 1 }))[0]!.content.data
    expect(removed).toEqual({ schema_version: 1, event: 'member_removed', agent_handle: c.handle, actor_handle: a.handle })
    expect((await rejection(c.client.getGroup(id))).code).toBe('GROUP_NOT_FOUND')
    expect((await c.client.listConversations()).some((x) => x.id === id)).toBe(false)
  })

  test('LAST_ADMIN, and leaving as the last admin promotes the longest-standing member', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const id = await groupWith(a, b, c)
    await a.client.promoteGroupMember(id, b.handle)
    await a.client.leaveGroup(id)
    // b (admin) is now the only admin; b cannot demote itself.
    expect((await rejection(b.client.demoteGroupMember(id, b.handle))).code).toBe('LAST_ADMIN')
    const left = await b.client.leaveGroup(id)
    expect(left).toEqual({ message: 'Left group', promoted_handle: c.handle })
    expect((await c.client.getGroup(id)).your_role).toBe('admin')
    const last = (await c.client.getMessages(id, { limit: 2 })).map((m) => [m.sender, m.content.data])
    expect(last[0]).toEqual([c.handle, { schema_version: 1, event: 'admin_promoted', agent_handle: c.handle, actor_handle: null }])
    expect(last[1]).toEqual([b.handle, { schema_version: 1, event: 'member_left', agent_handle: b.handle }])
  })

  test('deletion: final system message, group.deleted, then 410 with details for former members; 404 for others', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const id = await groupWith(a, b)
    const ws = await new WsProbe(s.url).hello(b.apiKey)
    await ws.until(() => ws.frames.length >= 1, 'hello')
    expect((await rejection(b.client.deleteGroup(id))).code).toBe('FORBIDDEN')
    const res = await a.client.deleteGroup(id)
    expect(res.deleted_at).toBeString()
    await ws.until(() => ws.ofType('group.deleted').length === 1, 'group.deleted')
    const types = ws.frames.map((f) => (f.type === 'message.new' ? `message.new:${f.payload.content?.data?.event}` : f.type))
    expect(types.indexOf('message.new:group_deleted')).toBeGreaterThanOrEqual(0)
    expect(types.indexOf('message.new:group_deleted')).toBeLessThan(types.indexOf('group.deleted'))
    expect(ws.ofType('group.deleted')[0]!.payload).toEqual({ group_id: id, deleted_by_handle: a.handle, deleted_at: res.deleted_at })

    for (const call of [() => b.client.getGroup(id), () => b.client.getMessages(id), () => b.client.sendMessage({ conversation_id: id, content: { text: 'x' } }), () => b.client.leaveGroup(id)]) {
      const e = await rejection(call())
      expect(e).toBeInstanceOf(GroupDeletedError)
      expect(e.status).toBe(410)
      expect((e as any).groupId ?? e.details?.group_id).toBe(id)
      expect(e.details).toEqual({ group_id: id, deleted_by_handle: a.handle, deleted_at: res.deleted_at })
    }
    const stranger = await rejection(c.client.getGroup(id))
    expect(stranger).toBeInstanceOf(NotFoundError)
    expect(stranger.code).toBe('GROUP_NOT_FOUND')
    expect((await b.client.listConversations()).some((x) => x.id === id)).toBe(false)
    ws.close()
  })

  test('a full group answers 409 GROUP_FULL', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const { group } = await a.client.createGroup({ name: 'Full' })
    const inv = await a.client.addGroupMember(group.id, b.handle)
    // Fill the group to 256 active members straight in the table (255 placeholder members + a).
    await s.admin.sql(sql`
      insert into conversation_members (conversation_id, agent_id, role, joined_seq)
      select ${group.id}, 'agt_filler' || g, 'member', 1 from generate_series(1, 255) g`)
    await s.admin.groupChanged(group.id)
    const full = await rejection(b.client.acceptGroupInvite(inv.invite_id!))
    expect(full.status).toBe(409)
    expect(full.code).toBe('GROUP_FULL')
    const c = await registerAgent(s)
    expect((await rejection(a.client.addGroupMember(group.id, c.handle))).code).toBe('GROUP_FULL')
  })

  test('Idempotency-Key on group creation replays the first answer', async () => {
    const a = await registerAgent(s)
    const key = `grp-${crypto.randomUUID()}`
    const first = await api(s, 'POST', '/v1/groups', { key: a.apiKey, body: { name: 'Once' }, headers: { 'idempotency-key': key } })
    const again = await api(s, 'POST', '/v1/groups', { key: a.apiKey, body: { name: 'Once' }, headers: { 'idempotency-key': key } })
    expect(first.status).toBe(201)
    expect(again.status).toBe(201)
    expect(again.json.group.id).toBe(first.json.group.id)
    expect(again.headers.get('idempotent-replay')).toBe('true')
    const spec = (await api(s, 'GET', '/v1/openapi.json')).json
    for (const p of ['/v1/groups', '/v1/groups/{id}', '/v1/groups/invites', '/v1/groups/invites/{id}/accept', '/v1/groups/{id}/members/{handle}/demote']) {
      expect(spec.paths[p]).toBeDefined()
    }
    expect(spec.paths['/v1/groups/{id}/members/{handle}/demote'].post.responses['400'].description).toContain('LAST_ADMIN')
  })

  test('50 invites per sender per day', async () => {
    const a = await registerAgent(s)
    const { group } = await a.client.createGroup({ name: 'Many' })
    const targets: Registered[] = []
    for (let i = 0; i < 51; i++) targets.push(await registerAgent(s))
    for (let i = 0; i < 50; i++) expect((await a.client.addGroupMember(group.id, targets[i]!.handle)).outcome).toBe('invited')
    const capped = await api(s, 'POST', `/v1/groups/${group.id}/members`, { key: a.apiKey, body: { handle: targets[50]!.handle } })
    expect(capped.status).toBe(429)
    expect(capped.json.message).toBe('Daily group-invite limit reached (50/day)')
    expect(Number(capped.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
  }, 60_000)
})
