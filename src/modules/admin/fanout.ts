import type { AppContext } from '../../context.ts'
import { newId } from '../../lib/ids.ts'
import { pairOf } from '../conversations/direct-cache.ts'
import { DIRECT, publicMessage } from '../messages/shape.ts'
import type { WriteJob } from '../messages/writer.ts'

/** The seeded system agent that speaks for the operators (drizzle/0008_announcements.sql). */
export const SYSTEM_AGENT_ID = 'agt_chatfather'

export const FANOUT = {
  /** Lease a worker holds on an announcement while it works a batch; another resumes after it lapses. */
  leaseMs: 30_000,
  /** How often idle workers look for unfinished fan-outs (a new one is kicked at once locally). */
  pollMs: 2_000,
} as const

interface Claimed {
  id: string
  text: string
  data: unknown
  fanout_after: string
  audience_before: Date | string
}

/**
 * Announcement fan-out, lazy and in batches: the POST writes one row; workers then deliver it to
 * every agent as a direct message from the system agent, `batchSize` recipients at a time, through
 * the ordinary writer (so sync, the socket drain, history, webhooks and acks treat it like any
 * other message). A million agents cost a million message rows, written a batch at a time in the
 * background, never in one request. The cursor (last recipient id) advances after each batch
 * commits; a crash repeats at most one batch, and the repeat is absorbed by the per-sender
 * `client_msg_id` dedup (`ann_<id>`), so nobody gets it twice.
 *
 * No limit is tripped: the system agent's send rate and cold cap are not consulted, and the
 * recipient's backlog counts the message (exactly) but never refuses it.
 */
export class AnnouncementFanout {
  private timer: ReturnType<typeof setInterval> | undefined
  private running: Promise<void> | null = null
  private stopped = false

  constructor(
    private readonly ctx: AppContext,
    private readonly batchSize: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), FANOUT.pollMs)
    this.timer.unref?.()
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    await this.running
  }

  /** Work whatever is unfinished, unless this worker is already at it. */
  kick(): void {
    if (this.running || this.stopped) return
    this.running = this.work()
      .catch((err) => this.ctx.log.warn({ err }, 'announcement fan-out failed; retried on the next poll'))
      .finally(() => {
        this.running = null
      })
  }

  /** Resolves when no announcement is left unfinished (tests and shutdown). */
  async settled(): Promise<void> {
    for (;;) {
      await this.running
      const rows = await this.ctx.database.raw.query(`SELECT 1 FROM announcements WHERE fanout_done_at IS NULL LIMIT 1`)
      if (rows.length === 0) return
      this.kick()
      await Bun.sleep(50)
    }
  }

  private async work(): Promise<void> {
    for (;;) {
      if (this.stopped) return
      const a = await this.claim()
      if (!a) return
      let after = a.fanout_after
      while (!this.stopped) {
        const next = await this.batch(a, after)
        if (next === null) {
          await this.ctx.database.raw.query(`UPDATE announcements SET fanout_done_at = now(), lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2`, [a.id, this.ctx.origin])
          break
        }
        after = next.after
        const kept = await this.ctx.database.raw.query(
          `UPDATE announcements SET fanout_after = $3, delivered = delivered + $4, lease_until = now() + make_interval(secs => $5)
           WHERE id = $1 AND lease_owner = $2 RETURNING 1`,
          [a.id, this.ctx.origin, after, next.written, FANOUT.leaseMs / 1000],
        )
        if (kept.length === 0) break // the lease lapsed and another worker took over
      }
    }
  }

  /** Take the lease on the oldest unfinished announcement nobody else is working. */
  private async claim(): Promise<Claimed | null> {
    const rows = await this.ctx.database.raw.query<Claimed>(
      `UPDATE announcements SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)
       WHERE id = (SELECT id FROM announcements WHERE fanout_done_at IS NULL AND (lease_until IS NULL OR lease_until < now())
                   ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING id, text, data, fanout_after, audience_before`,
      [this.ctx.origin, FANOUT.leaseMs / 1000],
    )
    return rows[0] ?? null
  }

  /** One batch of recipients after `after`; null when there are none left. */
  private async batch(a: Claimed, after: string): Promise<{ after: string; written: number } | null> {
    const ctx = this.ctx
    const recipients = await ctx.database.raw.query<{ id: string }>(
      `SELECT id FROM agents WHERE id > $1 AND NOT is_system AND status IN ('active', 'restricted') AND created_at <= $2
       ORDER BY id LIMIT $3`,
      [after, new Date(a.audience_before).toISOString(), this.batchSize],
    )
    if (recipients.length === 0) return null
    const ids = recipients.map((r) => r.id)
    const conversations = await this.directConversations(ids)
    const slots = await ctx.backlog.reserveMany(ids, Infinity)
    const sender = await ctx.agents.get(SYSTEM_AGENT_ID)
    const content: Record<string, unknown> = { text: a.text }
    if (a.data !== null && a.data !== undefined) content.data = typeof a.data === 'string' ? JSON.parse(a.data) : a.data
    const createdAt = new Date()
    const results = await Promise.allSettled(
      ids.map((id) => {
        const job: WriteJob = {
          id: newId('msg'),
          conversationId: conversations.get(id)!,
          senderId: SYSTEM_AGENT_ID,
          clientMsgId: `ann_${a.id}`,
          type: 'text',
          content,
          metadata: { announcement_id: a.id },
          createdAt,
        }
        return ctx.writer.write(job)
      }),
    )
    let written = 0
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      const r = results[i]!
      if (r.status === 'rejected' || r.value.replay) {
        if (slots.get(id)?.ok) ctx.backlog.release(id)
        if (r.status === 'rejected') throw r.reason // the batch is retried from the same cursor
        continue
      }
      written++
      const m = r.value.message
      const recipient = await ctx.agents.get(id)
      if (recipient && recipient.pausedByOwner !== 'full' && !(await ctx.mutes.mutes(id, SYSTEM_AGENT_ID, m.conversationId))) {
        const pub = await ctx.provenance.deliver(await publicMessage(ctx.agents, m, DIRECT, sender ?? undefined), recipient, sender ?? undefined)
        ctx.push.toAgents([id], JSON.stringify({ type: 'message.new', payload: pub }), m.id)
      } else if (recipient) ctx.push.wake([id]) // stored without a frame: its long-polls look again
      ctx.dashboard.observe(m, [id])
    }
    return { after: ids.at(-1)!, written }
  }

  /**
   * The system agent's direct conversation with each recipient, created where missing (one
   * statement for the batch; the pair's unique index settles a race with a recipient writing to
   * the system agent at the same moment).
   */
  private async directConversations(ids: string[]): Promise<Map<string, string>> {
    const q = this.ctx.database.raw
    const pairs = ids.map((id) => pairOf(SYSTEM_AGENT_ID, id))
    const fresh = ids.map(() => newId('conv'))
    await this.ctx.database.transaction(async (tx) => {
      const made = await tx.query<{ id: string; agent_a: string; agent_b: string }>(
        `INSERT INTO conversations (id, type, agent_a, agent_b, initiator_id)
         SELECT c, 'direct', a, b, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(c, a, b)
         ORDER BY a, b
         ON CONFLICT (agent_a, agent_b) WHERE type = 'direct' DO NOTHING
         RETURNING id, agent_a, agent_b`,
        [fresh, pairs.map((p) => p[0]), pairs.map((p) => p[1]), SYSTEM_AGENT_ID],
      )
      if (made.length > 0) {
        await tx.query(
          `INSERT INTO conversation_members (conversation_id, agent_id)
           SELECT c, x FROM unnest($1::text[], $2::text[], $3::text[]) AS u(c, a, b), LATERAL (VALUES (a), (b)) v(x)
           ORDER BY 1, 2
           ON CONFLICT DO NOTHING`,
          [made.map((m) => m.id), made.map((m) => m.agent_a), made.map((m) => m.agent_b)],
        )
      }
    })
    const rows = await q.query<{ id: string; agent_a: string; agent_b: string }>(
      `SELECT id, agent_a, agent_b FROM conversations WHERE type = 'direct' AND (agent_a, agent_b) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
    )
    const out = new Map<string, string>()
    for (const r of rows) out.set(r.agent_a === SYSTEM_AGENT_ID ? r.agent_b : r.agent_a, r.id)
    return out
  }
}
