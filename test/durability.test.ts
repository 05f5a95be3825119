import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { AgentChatClient } from 'agentchatme'
import { backends, createTestDatabase, readCode } from './harness.ts'
import { freePort, spawnServer } from '../load/spawn-server.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(60_000)

/** A real server process (`bun src/main.ts`), so it can be SIGKILLed. */
async function spawnAt(env: Record<string, string>, port: number): Promise<Subprocess> {
  return (await spawnServer({ ...env, LOG_LEVEL: 'warn' }, { port, quiet: true })).proc
}

async function register(url: string, mailDir: string, handle: string) {
  const email = `${handle}@example.test`
  const { pending_id } = await AgentChatClient.register({ baseUrl: url, email, handle })
  const code = await readCode(mailDir, email)
  return (await AgentChatClient.verify(pending_id, code, { baseUrl: url })).client
}

const durable = (await backends()).filter((b) => b === 'embedded' || b === 'postgres')

describe.each(durable)('durability on %s', (backend) => {
  test('SIGKILL in the middle of a stream of sends: every 201 survives and reaches the recipient', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ac-kill-'))
    const mailDir = join(dataDir, 'mail')
    const db = backend === 'postgres' ? await createTestDatabase() : undefined
    const env: Record<string, string> = { DATA_DIR: dataDir, MAIL_DIR: mailDir, ...(db ? { DATABASE_URL: db.url, DATABASE_POOL: '5' } : {}) }
    const port = freePort()
    const url = `http://127.0.0.1:${port}`
    let proc = await spawnAt(env, port)
    try {
      const tag = Date.now().toString(36)
      const a = await register(url, mailDir, `kill-a-${tag}`)
      const b = await register(url, mailDir, `kill-b-${tag}`)
      const first = await a.sendMessage({ to: `kill-b-${tag}`, content: { text: 'hi' } })
      await b.sendMessage({ to: `kill-a-${tag}`, content: { text: 'hi back' } })
      const conversationId = first.message.conversation_id

      // Several concurrent streams of sends; kill -9 while they are in flight.
      const acknowledged: string[] = []
      let stop = false
      const stream = async (w: number) => {
        for (let i = 0; !stop; i++) {
          try {
            const r = await fetch(`${url}/v1/messages`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${(a as any).http.apiKey}` },
              body: JSON.stringify({ to: `kill-b-${tag}`, client_msg_id: `w${w}-${i}`, content: { text: `w${w}-${i}` } }),
            })
            if (r.status === 201) acknowledged.push(((await r.json()) as any).id)
            else if (r.status === 429) await Bun.sleep(50)
          } catch {
            return // connection refused / reset: the server is gone
          }
        }
      }
      const streams = [0, 1, 2, 3].map(stream)
      await Bun.sleep(700)
      proc.kill(9)
      stop = true
      await Promise.all(streams)
      await proc.exited
      expect(acknowledged.length).toBeGreaterThan(10)

      proc = await spawnAt(env, port)
      const history = new Set<string>()
      let before: number | undefined
      for (;;) {
        const page = await b.getMessages(conversationId, { limit: 200, beforeSeq: before })
        if (page.length === 0) break
        for (const m of page) history.add(m.id)
        before = page[page.length - 1]!.seq
      }
      const missing = acknowledged.filter((id) => !history.has(id))
      expect(missing).toEqual([])
      // And the recipient gets them.
      const synced = new Set<string>()
      let after: string | undefined
      for (;;) {
        const rows = await b.sync({ limit: 500, after })
        if (rows.length === 0) break
        for (const r of rows) synced.add(r.id)
        after = rows[rows.length - 1]!.delivery_id!
      }
      expect(acknowledged.filter((id) => !synced.has(id))).toEqual([])
      // Seqs stayed strictly increasing without duplicates across the crash.
      const all = await b.getMessages(conversationId, { limit: 200 })
      const seqs = all.map((m) => m.seq)
      expect(new Set(seqs).size).toBe(seqs.length)
    } finally {
      proc.kill(9)
      await proc.exited
      await db?.drop()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }, 60_000)
})
