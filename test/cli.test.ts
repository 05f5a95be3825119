import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Message } from 'agentchatme'
import { api, backends, establishedPair, readCode, startTestServer, uniqueHandle, type Registered, type TestServer } from './harness.ts'

// Real servers and real child processes on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(120_000)

/*
 * The `agentchat` command line (src/cli) as its users run it: the real binary spawned with
 * `bun src/cli/main.ts …`, its config file in a temp dir (AGENTCHAT_CONFIG), against a real server
 * per backend (one server shared by every case). Registration through the emailed code, the
 * config file's mode, whoami, send, inbox (then acked), --json documents, history, contacts,
 * groups, watch, a bad key's flat error. Then the listener: a responder script answering, killed
 * with SIGKILL while its handler is mid-message and restarted — every message gets exactly one
 * reply (checked in the sender's history); a crash after the reply but before the ack; a handler
 * that keeps failing (skipped after its retries); a refused reply (blocked). Last, the download
 * from GET /setup/listener runs on its own and answers.
 */

const CLI = join(import.meta.dir, '..', 'src', 'cli', 'main.ts')

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Run the CLI to completion. */
async function cli(args: string[], env: Record<string, string>, file = CLI): Promise<Run> {
  const p = Bun.spawn(['bun', file, ...args], {
    env: { PATH: process.env.PATH!, HOME: env.HOME ?? tmpdir(), ...env },
    stdout: 'pipe',
    stderr: 'pipe',
    stdin: 'ignore',
  })
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
  return { code, stdout, stderr }
}

/** Wait until `pred` holds (polled), or fail with `what`. */
async function until<T>(pred: () => Promise<T | undefined | false>, what: string, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await pred()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(150)
  }
}

describe.each(await backends())('agentchat CLI on %s', (backend) => {
  let s: TestServer
  let dir: string
  /** Per-agent CLI environments (each its own config file). */
  const envOf = (name: string) => ({ AGENTCHAT_CONFIG: join(dir, name, 'config.json'), AGENTCHAT_BASE_URL: s.url, HOME: dir })
  let alice: { handle: string; env: Record<string, string> }
  let bob: { handle: string; env: Record<string, string> }

  beforeAll(async () => {
    s = await startTestServer(backend)
    dir = mkdtempSync(join(tmpdir(), 'ac-cli-'))
  })
  afterAll(async () => {
    await s?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('register: start prints the pending id, --code or `register verify` finishes and stores the key 0600; whoami', async () => {
    // alice: start, then --code (the pending id remembered next to the config).
    const ah = uniqueHandle('cli-a')
    const aenv = envOf('alice')
    let started = Date.now() - 5
    const start = await cli(['register', '--email', `${ah}@example.test`, '--handle', ah, '--display-name', 'Alice CLI'], aenv)
    expect(start.stderr).toBe('')
    expect(start.code).toBe(0)
    expect(start.stdout).toMatch(/^pending pnd_[A-Za-z0-9_-]+: /)
    const code = await readCode(s.mailDir, `${ah}@example.test`, started)
    const done = await cli(['register', '--code', code], aenv)
    expect(done.code).toBe(0)
    expect(done.stdout).toContain(`registered @${ah} on ${s.url}`)
    const cfgPath = aenv.AGENTCHAT_CONFIG
    expect(statSync(cfgPath).mode & 0o777).toBe(0o600)
    expect(statSync(join(dir, 'alice')).mode & 0o777).toBe(0o700)
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'))
    expect(cfg).toEqual({ base_url: s.url, handle: ah, api_key: expect.stringMatching(/^ac_/) })
    expect(existsSync(join(dir, 'alice', 'pending.json'))).toBe(false)
    alice = { handle: ah, env: aenv }

    // bob: --json start, then the explicit `register verify <pending_id> <code>`.
    const bh = uniqueHandle('cli-b')
    const benv = envOf('bob')
    started = Date.now() - 5
    const bstart = await cli(['--json', 'register', '--email', `${bh}@example.test`, '--handle', bh], benv)
    expect(bstart.code).toBe(0)
    const doc = JSON.parse(bstart.stdout)
    expect(doc.pending_id).toMatch(/^pnd_/)
    expect(doc.handle).toBe(bh)
    const bcode = await readCode(s.mailDir, `${bh}@example.test`, started)
    const bdone = await cli(['--json', 'register', 'verify', doc.pending_id, bcode], benv)
    expect(bdone.code).toBe(0)
    expect(JSON.parse(bdone.stdout).handle).toBe(bh)
    expect(statSync(benv.AGENTCHAT_CONFIG).mode & 0o777).toBe(0o600)
    bob = { handle: bh, env: benv }

    // whoami, from the config file alone (no key in the environment).
    const who = await cli(['whoami'], alice.env)
    expect(who.code).toBe(0)
    expect(who.stdout).toContain(`@${ah} (Alice CLI) on ${s.url}`)
    const whoJson = await cli(['whoami', '--json'], bob.env)
    expect(JSON.parse(whoJson.stdout)).toMatchObject({ handle: bh, status: 'active', base_url: s.url })
    // A wrong code is the server's envelope, exit 1.
    const again = await cli(['register', 'verify', doc.pending_id, '000000'], benv)
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/^error (EXPIRED|INVALID_CODE): /)
  })

  test('send and inbox: the message is shown, then acked (a second inbox is empty); --no-ack peeks', async () => {
    const sent = await cli(['send', `@${bob.handle}`, 'hello', 'bob'], alice.env)
    expect(sent.stderr).toBe('')
    expect(sent.code).toBe(0)
    expect(sent.stdout).toContain(`you → @${bob.handle}: hello bob`)

    const peek = await cli(['inbox', '--no-ack'], bob.env)
    expect(peek.code).toBe(0)
    expect(peek.stdout).toContain(`@${alice.handle} → you: hello bob`)
    expect(peek.stdout).toContain('not acknowledged')
    const inbox = await cli(['inbox'], bob.env)
    expect(inbox.code).toBe(0)
    expect(inbox.stdout).toContain(`@${alice.handle} → you: hello bob`)
    const second = await cli(['inbox'], bob.env)
    expect(second.code).toBe(0)
    expect(second.stdout.trim()).toBe('no new messages')

    // The reply, by direct conversation id (the CLI turns it back into a `to`), with --data.
    const convId = JSON.parse((await cli(['--json', 'history', `@${alice.handle}`], bob.env)).stdout).conversation_id as string
    expect(convId).toMatch(/^conv_/)
    const reply = await cli(['--json', 'send', convId, 'hi alice', '--data', '{"n":1}'], bob.env)
    expect(reply.code).toBe(0)
    const m = JSON.parse(reply.stdout)
    expect(m).toMatchObject({ conversation_id: convId, sender: bob.handle, content: { text: 'hi alice', data: { n: 1 } } })
  })

  test('--json inbox: one document with the messages and the ack count; history paged', async () => {
    for (const t of ['one', 'two', 'three']) expect((await cli(['send', `@${alice.handle}`, t], bob.env)).code).toBe(0)
    const r = await cli(['inbox', '--json'], alice.env)
    expect(r.code).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.messages.map((m: Message) => m.content.text)).toEqual(['hi alice', 'one', 'two', 'three'])
    expect(doc.messages.every((m: Message) => m.sender === bob.handle)).toBe(true)
    expect(doc.acked).toBe(4)
    expect(doc.cursor).toMatch(/^del_/)
    expect(JSON.parse((await cli(['inbox', '--json'], alice.env)).stdout)).toEqual({ messages: [], acked: 0, cursor: null })

    // History: 5 messages (hello bob, hi alice, one, two, three), 2 a page, oldest first on screen.
    const p1 = JSON.parse((await cli(['--json', 'history', `@${bob.handle}`, '--limit', '2'], alice.env)).stdout)
    expect(p1.messages.map((m: Message) => m.content.text)).toEqual(['two', 'three'])
    expect(p1.next_before_seq).toBe(p1.messages[0].seq)
    const p2 = JSON.parse((await cli(['--json', 'history', p1.conversation_id, '--limit', '2', '--before', String(p1.next_before_seq)], alice.env)).stdout)
    expect(p2.messages.map((m: Message) => m.content.text)).toEqual(['hi alice', 'one'])
    const human = await cli(['history', `@${bob.handle}`, '--limit', '2'], alice.env)
    expect(human.stdout).toContain(`@${bob.handle} → you: three`)
    expect(human.stdout).toContain(`(older: agentchat history @${bob.handle} --before ${p1.next_before_seq})`)
  })

  test('contacts: add, list, block, unblock, report, remove', async () => {
    const add = await cli(['contacts', 'add', `@${bob.handle}`], alice.env)
    expect(add.code).toBe(0)
    expect(add.stdout.trim()).toBe(`added @${bob.handle} to your contacts`)
    const list = JSON.parse((await cli(['--json', 'contacts'], alice.env)).stdout)
    expect(list.contacts.map((c: { handle: string }) => c.handle)).toEqual([bob.handle])
    expect((await cli(['contacts'], alice.env)).stdout).toContain(`@${bob.handle}`)
    expect((await cli(['contacts', 'block', bob.handle], alice.env)).stdout.trim()).toBe(`blocked @${bob.handle}`)
    const refused = await cli(['send', `@${alice.handle}`, 'blocked?'], bob.env)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^error BLOCKED: /)
    expect((await cli(['contacts', 'unblock', bob.handle], alice.env)).code).toBe(0)
    expect((await cli(['send', `@${alice.handle}`, 'unblocked'], bob.env)).code).toBe(0)
    const rep = await cli(['--json', 'contacts', 'report', bob.handle, '--reason', 'testing reports'], alice.env)
    expect(rep.code).toBe(0)
    expect(JSON.parse(rep.stdout)).toMatchObject({ ok: true, handle: bob.handle, reported: true, blocked: true })
    // A report blocks too (server rule); lift it so the next cases can talk.
    expect((await cli(['send', `@${alice.handle}`, 'after report'], bob.env)).stderr).toMatch(/^error BLOCKED: /)
    expect((await cli(['contacts', 'unblock', bob.handle], alice.env)).code).toBe(0)
    expect((await cli(['contacts', 'remove', bob.handle], alice.env)).code).toBe(0)
    expect(JSON.parse((await cli(['--json', 'contacts'], alice.env)).stdout).contacts).toEqual([])
    await cli(['inbox'], alice.env) // leave alice's inbox empty for the next cases
  })

  test('groups: create, invite, list invites, accept, send, leave', async () => {
    const created = await cli(['--json', 'groups', 'create', 'CLI crew', '--description', 'made by the CLI test'], alice.env)
    expect(created.code).toBe(0)
    const g = JSON.parse(created.stdout).group
    expect(g.id).toMatch(/^grp_/)
    const inv = await cli(['--json', 'groups', 'invite', g.id, `@${bob.handle}`], alice.env)
    expect(inv.stderr).toBe("")
    expect(inv.code).toBe(0)
    const inviteResult = JSON.parse(inv.stdout)
    expect(inviteResult).toMatchObject({ handle: bob.handle, outcome: 'invited' })
    const bobList = JSON.parse((await cli(['--json', 'groups'], bob.env)).stdout)
    expect(bobList.groups).toEqual([])
    const invite = bobList.invites.find((i: { group_id: string }) => i.group_id === g.id)
    expect(invite.inviter_handle).toBe(alice.handle)
    const human = await cli(['groups'], bob.env)
    expect(human.stdout).toContain(`groups accept ${invite.id}`)
    const acc = await cli(['groups', 'accept', invite.id], bob.env)
    expect(acc.code).toBe(0)
    expect(acc.stdout).toContain(`joined CLI crew (${g.id})`)
    expect(JSON.parse((await cli(['--json', 'groups'], bob.env)).stdout).groups.map((x: { id: string }) => x.id)).toEqual([g.id])
    const said = await cli(['send', g.id, 'hello group'], bob.env)
    expect(said.code).toBe(0)
    const hist = JSON.parse((await cli(['--json', 'history', g.id], alice.env)).stdout)
    expect(hist.messages.some((m: Message) => m.content.text === 'hello group' && m.sender === bob.handle)).toBe(true)
    const left = await cli(['groups', 'leave', g.id], bob.env)
    expect(left.code).toBe(0)
    expect(left.stdout).toContain(`left ${g.id}`)
    await cli(['inbox'], alice.env)
  })

  test('errors: a bad key prints the flat envelope on stderr, exit ≠ 0, no stack; usage errors too', async () => {
    const env = { ...envOf('nobody'), AGENTCHAT_API_KEY: 'ac_not_a_real_key' }
    const r = await cli(['whoami'], env)
    expect(r.code).not.toBe(0)
    expect(r.stdout).toBe('')
    expect(r.stderr.trim()).toMatch(/^error UNAUTHORIZED: .+$/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
    const j = await cli(['--json', 'inbox'], env)
    expect(j.code).not.toBe(0)
    expect(JSON.parse(j.stderr).error).toMatchObject({ code: 'UNAUTHORIZED', status: 401 })
    const noKey = await cli(['whoami'], envOf('nobody'))
    expect(noKey.code).not.toBe(0)
    expect(noKey.stderr).toMatch(/^error UNAUTHORIZED: no API key/)
    const usage = await cli(['send', '@x', 'y', '--data', 'not json'], alice.env)
    expect(usage.code).not.toBe(0)
    expect(usage.stderr.trim()).toBe('error VALIDATION_ERROR: --data must be JSON')
    const unknown = await cli(['whoami', '--frobnicate'], alice.env)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/^error VALIDATION_ERROR: unknown option '--frobnicate'/)
  })

  test('watch: a message sent while watching is printed as it arrives (--json: one object per line); SIGINT ends it with 0', async () => {
    const p = Bun.spawn(['bun', CLI, '--json', 'watch'], { env: { PATH: process.env.PATH!, ...bob.env }, stdout: 'pipe', stderr: 'pipe' })
    const lines: string[] = []
    const reader = (async () => {
      const dec = new TextDecoder()
      let buf = ''
      for await (const chunk of p.stdout) {
        buf += dec.decode(chunk)
        let i
        while ((i = buf.indexOf('\n')) >= 0) {
          lines.push(buf.slice(0, i))
          buf = buf.slice(i + 1)
        }
      }
    })()
    await until(async () => lines.some((l) => JSON.parse(l).event === 'connected'), 'watch to connect')
    const live = await cli(['send', `@${bob.handle}`, 'live one'], alice.env)
    expect(live.stderr).toBe('')
    expect(live.code).toBe(0)
    const got = await until(async () => lines.map((l) => JSON.parse(l)).find((e) => e.event === 'message.new'), 'the live message')
    expect(got.message).toMatchObject({ sender: alice.handle, content: { text: 'live one' } })
    p.kill('SIGINT')
    expect(await p.exited).toBe(0)
    await reader
  })

  describe('listen', () => {
    let pair: { a: Registered; b: Registered; conversationId: string }
    let work: string
    let responder: string
    let listenerEnv: Record<string, string>
    const statePath = () => join(work, 'state.json')

    /** Every reply the listener (b) sent in the conversation, as texts, oldest first. */
    const replies = async () => {
      const page = await pair.a.client.getMessages(pair.conversationId, { limit: 200 })
      return page
        .filter((m) => m.sender === pair.b.handle && m.content.text !== 'hello back')
        .sort((x, y) => x.seq - y.seq)
        .map((m) => m.content.text!)
    }

    function startListener(extra: string[] = [], file = CLI) {
      const p = Bun.spawn(['bun', file, '--json', 'listen', '--exec', `bun ${responder}`, '--state', statePath(), '--max-backoff', '1', '--poll-timeout', '5', ...extra], {
        env: { PATH: process.env.PATH!, ...listenerEnv },
        stdout: 'pipe',
        stderr: 'pipe',
      })
      const events: any[] = []
      const done = (async () => {
        const dec = new TextDecoder()
        let buf = ''
        for await (const chunk of p.stdout) {
          buf += dec.decode(chunk)
          let i
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i)
            buf = buf.slice(i + 1)
            try {
              events.push(JSON.parse(line))
            } catch {
              events.push({ event: 'unparsed', line })
            }
          }
        }
      })()
      return { p, events, done }
    }

    beforeAll(async () => {
      pair = await establishedPair(s)
      // establishedPair's opening "hi" is still waiting for b: acknowledge it, so the listener
      // starts on an empty inbox.
      const rows = await pair.b.client.sync()
      if (rows.at(-1)?.delivery_id) await pair.b.client.syncAck(rows.at(-1)!.delivery_id!)
      work = mkdtempSync(join(dir, 'listen-'))
      responder = join(work, 'responder.ts')
      // The handler: logs each run's start (so the test knows it is mid-message), sleeps on a
      // message marked "slow", fails on "fail", and answers everything else "pong: <text>".
      writeFileSync(
        responder,
        `const m = JSON.parse(await Bun.stdin.text())
const fs = require('node:fs')
fs.appendFileSync(${JSON.stringify(join(work, 'runs.log'))}, m.content.text + '\\n')
if (m.content.text.includes('slow')) await Bun.sleep(4000)
if (m.content.text.includes('fail')) process.exit(3)
if (m.content.text.includes('quiet')) process.exit(0)
console.log('pong: ' + m.content.text + ' from @' + m.author.handle)
`,
      )
      listenerEnv = { AGENTCHAT_API_KEY: pair.b.apiKey, AGENTCHAT_BASE_URL: s.url, AGENTCHAT_CONFIG: join(work, 'config.json'), HOME: dir }
    })

    const runs = () => (existsSync(join(work, 'runs.log')) ? readFileSync(join(work, 'runs.log'), 'utf8').trim().split('\n') : [])

    test('answers through the handler; SIGKILL mid-message and a restart: every message exactly one reply', async () => {
      const texts = ['m1', 'm2', 'm3 slow', 'm4', 'm5']
      for (const t of texts) await pair.a.client.sendMessage({ to: pair.b.handle, content: { text: t } })
      const first = startListener()
      // m1 and m2 answered, and the handler is in the middle of "m3 slow".
      await until(async () => (await replies()).length >= 2 && runs().includes('m3 slow'), 'two replies and the slow handler running')
      first.p.kill('SIGKILL')
      await first.p.exited
      await first.done
      expect(await replies()).toEqual(['pong: m1 from @' + pair.a.handle, 'pong: m2 from @' + pair.a.handle])
      const handled = first.events.filter((e) => e.event === 'replied').map((e) => e.id)
      expect(handled).toHaveLength(2)
      const state = JSON.parse(readFileSync(statePath(), 'utf8'))
      expect(state.handle).toBe(pair.b.handle)
      expect(state.completed.map((c: { outcome: string }) => c.outcome)).toEqual(['replied', 'replied'])

      const second = startListener()
      await until(async () => (await replies()).length >= 5, 'all five replies', 40_000)
      second.p.kill('SIGTERM')
      expect(await second.p.exited).toBe(0)
      await second.done
      expect(await replies()).toEqual(texts.map((t) => `pong: ${t} from @${pair.a.handle}`))
      // The interrupted message ran again after the restart; nothing else did.
      expect(runs()).toEqual(['m1', 'm2', 'm3 slow', 'm3 slow', 'm4', 'm5'])
      expect(second.events.at(-1)).toMatchObject({ event: 'stopped', handled: 3 })
      // Everything is acknowledged.
      expect(await pair.b.client.sync()).toEqual([])
      const input = second.events.find((e) => e.event === 'message')!.message
      expect(input).toMatchObject({ conversation_id: pair.conversationId, sender: pair.a.handle, author: { handle: pair.a.handle }, type: 'text', content: { text: 'm3 slow' } })
      expect(input.id).toMatch(/^msg_/)
      expect(typeof input.seq).toBe('number')
    })

    test('a crash after the reply was sent but before the ack: the restart sends no second reply', async () => {
      const { message } = await pair.a.client.sendMessage({ to: pair.b.handle, content: { text: 'm6' } })
      // What a listener killed right after sending leaves behind: the reply exists (sent with
      // the listener's key for this message), the message is neither completed nor acked.
      await pair.b.client.sendMessage({ to: pair.a.handle, client_msg_id: `listen-${message.id}`, content: { text: `pong: m6 from @${pair.a.handle}` } })
      const l = startListener(['--max-messages', '1'])
      expect(await l.p.exited).toBe(0)
      await l.done
      expect(l.events.find((e) => e.event === 'replied')).toMatchObject({ id: message.id })
      expect((await replies()).filter((t) => t.includes('m6'))).toEqual([`pong: m6 from @${pair.a.handle}`])
      expect(await pair.b.client.sync()).toEqual([])
    })

    test('a handler that keeps failing is retried --max-attempts times, then skipped (acked) with a log line; a refused reply is logged, not retried', async () => {
      await pair.a.client.sendMessage({ to: pair.b.handle, content: { text: 'm7 fail' } })
      await pair.a.client.sendMessage({ to: pair.b.handle, content: { text: 'm8 quiet' } })
      await pair.a.client.sendMessage({ to: pair.b.handle, content: { text: 'm9' } })
      const l = startListener(['--max-attempts', '2', '--max-messages', '3'])
      expect(await l.p.exited).toBe(0)
      await l.done
      const kinds = l.events.map((e) => e.event)
      expect(kinds.filter((k) => k === 'cmd_failed')).toHaveLength(1)
      expect(l.events.find((e) => e.event === 'skipped')).toMatchObject({ attempts: 2 })
      expect(kinds).toContain('no_reply')
      expect(runs().filter((r) => r === 'm7 fail')).toHaveLength(2)
      expect((await replies()).slice(-1)).toEqual([`pong: m9 from @${pair.a.handle}`])
      expect((await replies()).some((t) => t.includes('m7') || t.includes('m8'))).toBe(false)

      // Refused: a blocks b after writing; the reply is a 403 BLOCKED, logged once, and acked.
      await pair.a.client.sendMessage({ to: pair.b.handle, content: { text: 'm10' } })
      await pair.a.client.blockAgent(pair.b.handle)
      const r = startListener(['--max-messages', '1'])
      expect(await r.p.exited).toBe(0)
      await r.done
      expect(r.events.filter((e) => e.event === 'reply_refused')).toHaveLength(1)
      expect(r.events.find((e) => e.event === 'reply_refused').error.code).toBe('BLOCKED')
      expect(await pair.b.client.sync()).toEqual([])
      await pair.a.client.unblockAgent(pair.b.handle)
    })

    test('GET /setup/listener: the bundled CLI as a download that runs on its own and answers', async () => {
      const res = await fetch(`${s.url}/setup/listener`)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
      expect(res.headers.get('content-disposition')).toBe('attachment; filename=agentchat-listener.js')
      const script = await res.text()
      expect(script.startsWith('#!/usr/bin/env bun\n')).toBe(true)
      expect(script).toContain(`process.env.AGENTCHAT_DEFAULT_BASE_URL ??= ${JSON.stringify(s.url)}`)
      // Outside the repository, so nothing can be resolved from node_modules: it is self-contained.
      const file = join(work, 'agentchat-listener.js')
      writeFileSync(file, script)
      const help = await cli(['--help'], { HOME: dir }, file)
      expect(help.code).toBe(0)
      expect(help.stdout).toContain('listen [options]')
      // No AGENTCHAT_BASE_URL: the download defaults to the server it came from.
      const { AGENTCHAT_BASE_URL: _u, ...noUrl } = listenerEnv
      const who = await cli(['whoami'], noUrl, file)
      expect(who.stdout).toContain(`@${pair.b.handle} on ${s.url}`)
      await pair.a.client.sendMessage({ to: pair.b.handle, content: { text: 'm11 via download' } })
      const saved = listenerEnv
      listenerEnv = noUrl
      const l = startListener(['--max-messages', '1'], file)
      listenerEnv = saved
      expect(await l.p.exited).toBe(0)
      await l.done
      expect((await replies()).slice(-1)).toEqual([`pong: m11 via download from @${pair.a.handle}`])
      // The guide links it.
      const guide = await api(s, 'GET', '/setup', { headers: { accept: 'text/markdown' } })
      expect(guide.text).toContain(`[the listener](${s.url}/setup/listener)`)
      expect(guide.text).toContain(`curl -sSo agentchat-listener.js '${s.url}/setup/listener'`)
    })
  })
})
