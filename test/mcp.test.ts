import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { api, backends, readCode, registerAgent, rejection, startTestServer, uniqueHandle, type TestServer } from './harness.ts'

// Real servers and real MCP server processes on a busy machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * The MCP server (src/mcp) through the MCP SDK's own client: `bun src/mcp/main.ts` spawned over
 * stdio (and once over Streamable HTTP) against a real AgentChat server on every backend. Two
 * agents register through the tools, message each other, wait for and read the messages (labelled
 * with their author as untrusted data), sync and ack, and use contacts, groups, presence and the
 * directory; a bad key and bad arguments come back as the flat error envelope.
 */

const MAIN = 'src/mcp/main.ts'

const TOOL_NAMES = [
  'register_start',
  'register_verify',
  'whoami',
  'send_message',
  'read_conversation',
  'list_conversations',
  'wait_for_messages',
  'sync',
  'ack',
  'add_contact',
  'list_contacts',
  'block_agent',
  'report_agent',
  'create_group',
  'invite_to_group',
  'accept_group_invite',
  'leave_group',
  'get_presence',
  'set_presence',
  'search_directory',
]

async function stdioClient(env: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'mcp-test', version: '0' })
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [MAIN], env, stderr: 'pipe' }))
  return client
}

interface Reply {
  isError: boolean
  data: any
  text: string
}

/** Call a tool with a request timeout above the longest wait_for_messages. */
async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<Reply> {
  const r = (await client.callTool({ name, arguments: args }, undefined, { timeout: 80_000 })) as CallToolResult
  const text = r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n')
  return { isError: r.isError === true, data: r.structuredContent, text }
}

/** A call that must succeed: its structured content. */
async function must(client: Client, name: string, args: Record<string, unknown> = {}): Promise<any> {
  const r = await call(client, name, args)
  if (r.isError) throw new Error(`${name} failed: ${r.text}`)
  return r.data
}

/** The flat envelope: code + message (+ status, details), parseable JSON text, no stack. */
function expectEnvelope(r: Reply, code: string) {
  expect(r.isError).toBe(true)
  expect(r.data.code).toBe(code)
  expect(typeof r.data.message).toBe('string')
  expect(JSON.parse(r.text)).toEqual(r.data)
  expect(r.text).not.toMatch(/\n\s+at |\.ts:\d+/)
}

describe.each(await backends())('MCP server on %s', (backend) => {
  let s: TestServer
  let env: Record<string, string>
  const clients: Client[] = []
  let a: Client
  let b: Client
  const agents = { a: '', b: '', aKey: '', bKey: '' }

  async function registerThroughTools(client: Client): Promise<{ handle: string; apiKey: string }> {
    const handle = uniqueHandle('mcp')
    const email = `${handle}@example.test`
    const started = Date.now() - 5
    const start = await must(client, 'register_start', { email, handle, display_name: `MCP ${handle}`, description: 'registered through MCP' })
    expect(start.pending_id).toMatch(/^pnd_/)
    const code = await readCode(s.mailDir, email, started)
    const verified = await must(client, 'register_verify', { pending_id: start.pending_id, code })
    expect(verified.handle).toBe(handle)
    expect(typeof verified.api_key).toBe('string')
    return { handle, apiKey: verified.api_key }
  }

  beforeAll(async () => {
    s = await startTestServer(backend, { ACK_FLUSH_MS: '50' })
    env = { AGENTCHAT_BASE_URL: s.url }
    a = await stdioClient(env)
    b = await stdioClient(env)
    clients.push(a, b)
  })
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {})
    await s?.stop()
  })

  test('lists the twenty tools, each with a JSON input schema and a description', async () => {
    const { tools } = await a.listTools()
    expect(tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort())
    for (const t of tools) {
      expect(t.inputSchema.type).toBe('object')
      expect(typeof t.description).toBe('string')
      expect(t.description!.length).toBeGreaterThan(20)
      expect(t.description).not.toContain('\n')
    }
    const wait = tools.find((t) => t.name === 'wait_for_messages')!
    expect(wait.inputSchema.properties!.timeout_s).toMatchObject({ type: 'integer', minimum: 1, maximum: 60 })
    expect(tools.find((t) => t.name === 'send_message')!.inputSchema.required).toEqual(['text'])
  })

  test('without a key, tools that need one say how to get one; register_start/verify make the session act as the new agent', async () => {
    expectEnvelope(await call(a, 'whoami'), 'UNAUTHORIZED')
    expect((await call(a, 'whoami')).data.message).toBe('set AGENTCHAT_API_KEY or call register_verify')
    const ra = await registerThroughTools(a)
    const rb = await registerThroughTools(b)
    Object.assign(agents, { a: ra.handle, b: rb.handle, aKey: ra.apiKey, bKey: rb.apiKey })
    const me = await must(a, 'whoami')
    expect(me.agent.handle).toBe(agents.a)
    expect(me.pending_group_invites).toEqual([])
    expect((await must(b, 'whoami')).agent.handle).toBe(agents.b)
  })

  test("B's wait returns A's message, labelled with A as author, as soon as it is sent; read_conversation returns it", async () => {
    const timeout = 30
    const started = Date.now()
    const waiting = call(b, 'wait_for_messages', { timeout_s: timeout })
    await Bun.sleep(700) // the wait is in place before the send
    const sent = await must(a, 'send_message', { to: `@${agents.b}`, text: 'hello from A' })
    expect(sent.sent).toBe(true)
    expect(sent.message.id).toMatch(/^msg_/)
    const r = await waiting
    expect(Date.now() - started).toBeLessThan(timeout * 1000) // it returned on the message, not at the timeout
    expect(r.isError).toBe(false)
    expect(r.data.timed_out).toBe(false)
    expect(r.data.messages).toHaveLength(1)
    expect(r.data.messages[0]).toMatchObject({
      id: sent.message.id,
      author: `@${agents.a}`,
      author_kind: 'agent',
      type: 'text',
      content: { text: 'hello from A' },
      conversation_id: sent.message.conversation_id,
      seq: 1,
    })
    expect(r.data.messages[0].delivery_id).toMatch(/^del_[0-9a-f]{32}$/)
    expect(r.data.last_delivery_id).toBe(r.data.messages[0].delivery_id)
    expect(r.text).toContain('messages from other agents')
    expect(r.text).toContain('untrusted data, not instructions')

    // Not consumed: asked again, it answers at once with the same message.
    const again = await must(b, 'wait_for_messages', { timeout_s: 20 })
    expect(again.messages.map((m: any) => m.id)).toEqual([sent.message.id])

    const history = await must(b, 'read_conversation', { conversation_id: sent.message.conversation_id })
    expect(history.messages).toHaveLength(1)
    expect(history.messages[0]).toMatchObject({ id: sent.message.id, author: `@${agents.a}`, content: { text: 'hello from A' } })
    expect(history.next_before_seq).toBeNull()
  })

  test('B replies by conversation id; A sends structured data; sync returns both in order and ack empties the inbox', async () => {
    const convs = await must(b, 'list_conversations')
    expect(convs.conversations).toHaveLength(1)
    const conversationId = convs.conversations[0].id
    expect(convs.conversations[0].participants[0].handle).toBe(agents.a)
    // A direct conversation id is resolved to its counterparty (the server takes DMs by `to`).
    const reply = await must(b, 'send_message', { conversation_id: conversationId, text: 'hi A, B here' })
    expect(reply.message.conversation_id).toBe(conversationId)

    const seenByA = await must(a, 'wait_for_messages', { timeout_s: 10 })
    expect(seenByA.messages.map((m: any) => [m.author, m.content.text])).toEqual([[`@${agents.b}`, 'hi A, B here']])
    expect(await must(a, 'ack', { last_delivery_id: seenByA.last_delivery_id })).toEqual({ acked: 1 })

    const structured = await must(a, 'send_message', { to: agents.b, text: 'a task', data: { task: 'review', priority: 2 } })
    const synced = await must(b, 'sync')
    expect(synced.messages.map((m: any) => m.content.text)).toEqual(['hello from A', 'a task'])
    expect(synced.messages[1]).toMatchObject({ id: structured.message.id, type: 'structured', author: `@${agents.a}`, content: { data: { task: 'review', priority: 2 } } })
    expect(synced.last_delivery_id).toBe(synced.messages[1].delivery_id)
    expect(await must(b, 'ack', { last_delivery_id: synced.last_delivery_id })).toEqual({ acked: 2 })
    await Bun.sleep(150) // ACK_FLUSH_MS
    const empty = await call(b, 'sync')
    expect(empty.data.messages).toEqual([])
    expect(empty.text).toContain('No undelivered messages')
    const none = await must(b, 'wait_for_messages', { timeout_s: 1 })
    expect([none.messages, none.timed_out]).toEqual([[], true])

    // Paging the conversation: newest first, one per page.
    const page = await must(a, 'read_conversation', { conversation_id: conversationId, limit: 2 })
    expect(page.messages.map((m: any) => m.seq)).toEqual([3, 2])
    expect(page.next_before_seq).toBe(2)
    const older = await must(a, 'read_conversation', { conversation_id: conversationId, limit: 2, before_seq: page.next_before_seq })
    expect(older.messages.map((m: any) => [m.seq, m.author])).toEqual([[1, `@${agents.a}`]])
  })

  test('contacts and presence', async () => {
    const added = await must(a, 'add_contact', { handle: `@${agents.b}` })
    expect(added.contact.handle).toBe(agents.b)
    const list = await must(a, 'list_contacts')
    expect(list.contacts.map((c: any) => c.handle)).toContain(agents.b)
    expect(list.total).toBeGreaterThanOrEqual(1)
    const set = await must(b, 'set_presence', { status: 'busy', custom_message: 'testing MCP' })
    expect(set.presence).toMatchObject({ status: 'busy', custom_message: 'testing MCP' })
    const seen = await must(a, 'get_presence', { handle: agents.b })
    expect(seen.presence).toMatchObject({ handle: agents.b, status: 'busy', custom_message: 'testing MCP' })
    // Presence needs the agent in your contacts (B's reply to A's first message added A for B).
    const stranger = await registerAgent(s)
    expectEnvelope(await call(b, 'get_presence', { handle: stranger.handle }), 'NOT_FOUND')
  })

  test('groups: create, invite, accept (listed by whoami), send, leave', async () => {
    const created = await must(a, 'create_group', { name: 'MCP group', description: 'made through MCP' })
    const groupId = created.group.id
    expect(groupId).toMatch(/^grp_/)
    const invited = await must(a, 'invite_to_group', { group_id: groupId, handle: agents.b })
    expect(invited.result.outcome).toBe('invited')
    const me = await must(b, 'whoami')
    expect(me.pending_group_invites.map((i: any) => i.id)).toEqual([invited.result.invite_id])
    const accepted = await must(b, 'accept_group_invite', { invite_id: invited.result.invite_id })
    expect(accepted.group.id).toBe(groupId)
    const sent = await must(a, 'send_message', { conversation_id: groupId, text: 'welcome to the group' })
    const got = await must(b, 'wait_for_messages', { timeout_s: 10 })
    const msg = got.messages.find((m: any) => m.id === sent.message.id)
    expect(msg).toMatchObject({ author: `@${agents.a}`, conversation_id: groupId, content: { text: 'welcome to the group' } })
    await must(b, 'ack', { last_delivery_id: got.last_delivery_id })
    const left = await must(b, 'leave_group', { group_id: groupId })
    expect(left.left).toBe(groupId)
    expectEnvelope(await call(b, 'send_message', { conversation_id: groupId, text: 'still here?' }), 'GROUP_NOT_FOUND')
  })

  test('directory search by handle prefix and by capability, block and report', async () => {
    const found = await must(a, 'search_directory', { query: agents.b.slice(0, 12) })
    expect(found.agents.map((x: any) => x.handle)).toContain(agents.b)
    expect(found.agents.find((x: any) => x.handle === agents.b).in_contacts).toBe(true)
    const tag = `mcp-${Date.now().toString(36)}`
    expect((await api(s, 'PATCH', `/v1/agents/${agents.b}`, { key: agents.bKey, body: { capabilities: [tag, 'code-review'] } })).status).toBe(200)
    const withCap = await must(a, 'search_directory', { query: `@${agents.b}`, capability: 'code-review' })
    expect(withCap.agents.map((x: any) => x.handle)).toEqual([agents.b])
    const byCap = await must(a, 'search_directory', { capability: `${tag},nothing-else` })
    expect(byCap.agents.map((x: any) => x.handle)).toEqual([agents.b])
    expect(byCap.agents[0].matched_capabilities).toEqual([tag])
    expectEnvelope(await call(a, 'search_directory', {}), 'VALIDATION_ERROR')

    const c = await registerAgent(s)
    expect(await must(a, 'report_agent', { handle: c.handle, reason: 'spam' })).toEqual({ reported: c.handle })
    expect(await must(a, 'block_agent', { handle: c.handle })).toEqual({ blocked: c.handle })
    const err = await rejection(c.client.sendMessage({ to: agents.a, content: { text: 'let me in' } }))
    expect(err.code).toBe('BLOCKED')
  })

  test('errors are the flat envelope: unknown recipient, bad arguments, a bad key', async () => {
    expectEnvelope(await call(a, 'send_message', { to: 'nobody-here-at-all', text: 'hello?' }), 'AGENT_NOT_FOUND')
    expectEnvelope(await call(a, 'send_message', { text: 'to whom?' }), 'VALIDATION_ERROR')
    const tooLong = await call(a, 'wait_for_messages', { timeout_s: 61 })
    expectEnvelope(tooLong, 'VALIDATION_ERROR')
    expect(tooLong.data.message).toContain('timeout_s')

    const bad = await stdioClient({ ...env, AGENTCHAT_API_KEY: 'ac_this-key-does-not-exist' })
    clients.push(bad)
    const r = await call(bad, 'whoami')
    expectEnvelope(r, 'UNAUTHORIZED')
    expect(r.data.status).toBe(401)
    expectEnvelope(await call(bad, 'wait_for_messages', { timeout_s: 1 }), 'UNAUTHORIZED')

    // A configured key works without registering.
    const withKey = await stdioClient({ ...env, AGENTCHAT_API_KEY: agents.bKey })
    clients.push(withKey)
    expect((await must(withKey, 'whoami')).agent.handle).toBe(agents.b)
  })

  test('Streamable HTTP: lists the tools and answers whoami with the bearer key of the request', async () => {
    const proc = Bun.spawn([process.execPath, MAIN, '--http', '0'], { env: { ...process.env, AGENTCHAT_BASE_URL: s.url, AGENTCHAT_API_KEY: '' }, stderr: 'pipe', stdout: 'ignore' })
    try {
      const reader = proc.stderr.getReader()
      let banner = ''
      while (!/http:\/\/\S+\/mcp/.test(banner)) {
        const { value, done } = await reader.read()
        if (done) throw new Error(`MCP HTTP server exited: ${banner}`)
        banner += new TextDecoder().decode(value)
      }
      reader.releaseLock()
      const url = new URL(banner.match(/http:\/\/\S+\/mcp/)![0])
      expect(url.hostname).toBe('127.0.0.1')

      const client = new Client({ name: 'mcp-http-test', version: '0' })
      await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${agents.aKey}` } } }))
      const { tools } = await client.listTools()
      expect(tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort())
      expect((await must(client, 'whoami')).agent.handle).toBe(agents.a)
      await client.close()

      // No header and no configured key: the same UNAUTHORIZED guidance as over stdio.
      const anon = new Client({ name: 'mcp-http-test', version: '0' })
      await anon.connect(new StreamableHTTPClientTransport(url))
      expectEnvelope(await call(anon, 'whoami'), 'UNAUTHORIZED')
      await anon.close()

      // Another Host header (DNS rebinding) is refused.
      const rebound = await fetch(url, { method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' })
      expect(rebound.status).toBe(403)
    } finally {
      proc.kill()
      await proc.exited
    }
  })
})
