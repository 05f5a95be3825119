// The background listener (`agentchat listen --exec CMD`, Context Exchange seed 001).
//
// Loop: long-poll GET /v1/messages/stream (answers as soon as something is stored for us, with the
// same rows as GET /v1/messages/sync, oldest first; nothing changes state), then for each row in
// order: run CMD on it, send CMD's stdout as the reply, persist "completed" in the state file,
// then ack through that row's delivery_id. The ack is positional (everything up to the cursor), so
// rows are handled strictly in order and a failing message holds the queue until its retries run
// out.
//
// Exactly one reply per message across crashes:
//  - killed before the reply was sent (e.g. mid-CMD): nothing was acked or completed, the server
//    offers the message again, CMD runs again;
//  - killed after the reply was sent, before "completed" was written: CMD runs again, but the
//    reply is sent with client_msg_id (and Idempotency-Key) `listen-<message id>`; the server
//    dedups sends per (conversation, sender, client_msg_id) and answers the original message, so
//    no second reply appears;
//  - killed after "completed", before the ack: on restart the message is acked without running CMD.
import { AgentChatError, ConnectionError, createAgentChatError, type AgentChatClient, type SyncEnvelope } from 'agentchatme'
import { toEnvelope } from '../../client/errors.ts'
import type { Output } from '../output.ts'
import { Backoff } from './backoff.ts'
import { runHandler } from './exec.ts'
import type { ListenerState, Outcome } from './state.ts'

export interface ListenOptions {
  cmd: string
  baseUrl: string
  apiKey: string
  client: AgentChatClient
  me: string
  state: ListenerState
  out: Output
  /** CMD failures per message before it is skipped (acked without a reply). */
  maxAttempts: number
  cmdTimeoutMs: number
  pollTimeoutS: number
  maxBackoffMs: number
  includeSystem: boolean
  /** Stop after this many handled messages (tests, one-shot runs); undefined = forever. */
  maxMessages?: number
}

/** Errors worth retrying later: the network, the server's 5xx, and 429 (with its Retry-After). */
export function retriable(err: unknown): boolean {
  if (err instanceof ConnectionError) return true
  if (err instanceof AgentChatError) return err.status >= 500 || err.status === 429 || err.status === 408
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError' || err instanceof TypeError)) return true
  return false
}

function retryAfterMs(err: unknown): number | undefined {
  const v = (err as { retryAfterMs?: unknown }).retryAfterMs
  if (typeof v === 'number') return v
  const d = (err as AgentChatError).details?.retry_after_ms
  return typeof d === 'number' ? d : undefined
}

/** What CMD receives on stdin: the message, labelled with its author, as data. */
export function handlerInput(m: SyncEnvelope & Record<string, unknown>) {
  const input: Record<string, unknown> = {
    id: m.id,
    conversation_id: m.conversation_id,
    seq: m.seq,
    sender: m.sender,
    author: { handle: m.sender, display_name: (m.context as { sender?: { display_name?: string | null } } | undefined)?.sender?.display_name ?? null },
    type: m.type,
    content: m.content,
    metadata: m.metadata ?? {},
    created_at: m.created_at,
    delivery_id: m.delivery_id,
  }
  if (m.context !== undefined) input.context = m.context
  if (m.provenance !== undefined) input.provenance = m.provenance
  return input
}

export class Listener {
  private stopping = false
  private poll?: AbortController
  private wake?: () => void
  private handled = 0
  private readonly backoff: Backoff

  constructor(private readonly o: ListenOptions) {
    this.backoff = new Backoff(1000, o.maxBackoffMs)
  }

  /** SIGTERM/SIGINT: the message in hand is finished (CMD, reply, ack), then run() returns. */
  stop(): void {
    this.stopping = true
    this.poll?.abort()
    this.wake?.()
  }

  private log(event: string, fields: Record<string, unknown>, human: string): void {
    this.o.out.event({ event, at: new Date().toISOString(), ...fields }, () => `[listen] ${human}`)
  }

  private async sleep(ms: number): Promise<void> {
    if (this.stopping) return
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms)
      this.wake = () => {
        clearTimeout(t)
        resolve()
      }
    })
    this.wake = undefined
  }

  /** GET /v1/messages/stream: the stored rows once there are any, [] after the timeout. */
  private async longPoll(): Promise<SyncEnvelope[]> {
    this.poll = new AbortController()
    try {
      const res = await fetch(`${this.o.baseUrl}/v1/messages/stream?timeout=${this.o.pollTimeoutS}`, {
        headers: { authorization: `Bearer ${this.o.apiKey}`, 'x-agentchat-client': 'coding_agents' },
        signal: this.poll.signal,
      })
      const text = await res.text()
      let body: unknown
      try {
        body = text ? JSON.parse(text) : undefined
      } catch {
        body = undefined
      }
      if (!res.ok) {
        const e = body && typeof body === 'object' ? (body as { code?: string; message?: string }) : {}
        throw createAgentChatError({ code: e.code ?? 'INTERNAL_ERROR', message: e.message ?? `HTTP ${res.status}`, ...(body as object) } as never, res.status, res.headers)
      }
      if (!Array.isArray(body)) throw new ConnectionError('long-poll answered something other than a JSON array')
      return body as SyncEnvelope[]
    } finally {
      this.poll = undefined
    }
  }

  async run(): Promise<void> {
    this.log('started', { handle: this.o.me, state: this.o.state.path }, `listening as @${this.o.me} (state ${this.o.state.path})`)
    while (!this.stopping) {
      let rows: SyncEnvelope[]
      try {
        rows = await this.longPoll()
        this.backoff.reset()
      } catch (err) {
        if (this.stopping) break
        if (!retriable(err)) throw err // a bad key or a suspended agent will not fix itself
        await this.pause(err, 'long-poll')
        continue
      }
      for (const row of rows) {
        if (this.stopping) break
        try {
          const finished = await this.handle(row)
          if (!finished) break // CMD failed and will be retried: re-poll returns this row first
          this.backoff.reset()
        } catch (err) {
          if (!retriable(err)) throw err
          await this.pause(err, `message ${row.id}`)
          break
        }
        if (this.o.maxMessages !== undefined && this.handled >= this.o.maxMessages) this.stopping = true
      }
    }
    this.log('stopped', { handled: this.handled }, `stopped after ${this.handled} message(s)`)
  }

  private async pause(err: unknown, what: string): Promise<void> {
    const ms = this.backoff.next(retryAfterMs(err))
    const env = toEnvelope(err)
    this.log('backoff', { what, error: env, delay_ms: ms }, `${what}: ${env.code}: ${env.message}; retrying in ${(ms / 1000).toFixed(1)} s`)
    await this.sleep(ms)
  }

  /** One message, start to ack. Returns false when CMD failed and the message stays for a retry. */
  private async handle(row: SyncEnvelope): Promise<boolean> {
    const m = row as SyncEnvelope & Record<string, unknown>
    const st = this.o.state
    if (st.completion(m.id)) {
      // Finished before a restart; only the ack was missing.
      await this.ack(m)
      return true
    }
    if (m.sender === this.o.me) return this.finish(m, 'own')
    if (m.type === 'system' && !this.o.includeSystem) return this.finish(m, 'system')

    const started = Date.now()
    this.log('message', { message: handlerInput(m) }, `@${m.sender} → you (${m.conversation_id} #${m.seq}): running CMD`)
    const r = await runHandler(this.o.cmd, JSON.stringify(handlerInput(m)), {
      timeoutMs: this.o.cmdTimeoutMs,
      env: { AGENTCHAT_MESSAGE_ID: m.id, AGENTCHAT_CONVERSATION_ID: m.conversation_id, AGENTCHAT_SENDER: String(m.sender ?? '') },
    })
    if (r.code !== 0) {
      const n = st.failed(m.id)
      const why = r.timedOut ? `timed out after ${this.o.cmdTimeoutMs / 1000} s` : r.code === null ? `killed by ${r.signal}` : `exited ${r.code}`
      if (n >= this.o.maxAttempts) {
        this.log('skipped', { id: m.id, attempts: n, reason: why }, `CMD ${why} on ${m.id} (attempt ${n}/${this.o.maxAttempts}): giving up, acknowledging it without a reply`)
        return this.finish(m, 'skipped')
      }
      const ms = this.backoff.next()
      this.log('cmd_failed', { id: m.id, attempts: n, reason: why, retry_in_ms: ms }, `CMD ${why} on ${m.id} (attempt ${n}/${this.o.maxAttempts}); retrying in ${(ms / 1000).toFixed(1)} s`)
      await this.sleep(ms)
      return false
    }
    const reply = r.stdout.replace(/\s+$/, '')
    if (reply.length === 0) {
      this.log('no_reply', { id: m.id, ms: Date.now() - started }, `CMD printed nothing for ${m.id}: no reply`)
      return this.finish(m, 'no_reply')
    }
    return this.finish(m, await this.reply(m, reply))
  }

  /**
   * Send CMD's output into the message's conversation. The server applies the conversation's
   * rules (blocks, the first-contact rule, the recipient's permission contract for the category
   * the incoming message carried — which the reply carries too): a refusal is logged and the
   * message counts as handled, since sending again would be refused again.
   */
  private async reply(m: SyncEnvelope & Record<string, unknown>, text: string): Promise<Outcome> {
    const incoming = (m.metadata ?? {}) as Record<string, unknown>
    const metadata: Record<string, unknown> = { in_reply_to: m.id }
    if (typeof incoming.category === 'string') metadata.category = incoming.category
    if (typeof incoming.thread_id === 'string') metadata.thread_id = incoming.thread_id
    const address = m.conversation_id.startsWith('grp_') ? { conversation_id: m.conversation_id } : { to: String(m.sender) }
    const key = `listen-${m.id}`
    try {
      const { message } = await this.o.client.sendMessage({ ...address, client_msg_id: key, content: { text }, metadata }, { idempotencyKey: key })
      const held = (message as unknown as { status?: string }).status === 'pending_approval'
      if (held) {
        this.log('reply_held', { id: m.id }, `reply to ${m.id} is held for @${m.sender}'s approval`)
        return 'held'
      }
      this.log('replied', { id: m.id, reply_id: message.id, conversation_id: message.conversation_id }, `replied to @${m.sender} (${message.id})`)
      return 'replied'
    } catch (err) {
      if (retriable(err)) throw err
      const env = toEnvelope(err)
      this.log('reply_refused', { id: m.id, error: env }, `reply to ${m.id} refused: ${env.code}: ${env.message} (not retried)`)
      return 'refused'
    }
  }

  private async finish(m: SyncEnvelope, outcome: Outcome): Promise<boolean> {
    this.o.state.complete(m.id, m.delivery_id, outcome)
    await this.ack(m)
    this.handled++
    return true
  }

  private async ack(m: SyncEnvelope): Promise<void> {
    if (!m.delivery_id) return
    await this.o.client.syncAck(m.delivery_id)
    this.o.state.acked(m.delivery_id)
  }
}
