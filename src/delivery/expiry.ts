import type { AppContext } from '../context.ts'
import { CURSOR_SQL } from './cursors.ts'
import { enqueue } from './webhooks/outbox.ts'

/*
 * Expiry (issue 16.3). A message sent with `metadata.ttl_seconds` carries `expires_at`. Reads are
 * exact without this sweeper: the inbox (sync, the WebSocket drain, long-poll), history and the
 * webhook dispatcher leave out a message past its expiry for a member that has not received it.
 * The sweeper makes the expiry durable and tells the sender:
 *
 *   1. claim due messages — `expires_at <= now()`, not yet swept — with FOR UPDATE SKIP LOCKED and
 *      mark them swept in the same statement: every process (and worker) runs a sweeper, and a
 *      message is claimed by exactly one transaction, so its sender is told once; the state is in
 *      Postgres, so a restart (or a crash before the commit) just sweeps it again;
 *   2. lock the active members of those conversations in (agent_id, conversation_id) order — the
 *      order every cursor statement uses (delivery/cursors.ts), so sweepers and acks in any
 *      process wait on each other but never deadlock — and stamp `expiry_mark` (this decision's
 *      instant) on them;
 *   3. in a fresh statement (so a snapshot taken after the locks: every ack that won the lock is
 *      visible), record a `delivery_skips` row for each member for whom the message is still
 *      stored: it leaves their backlog (the slot is released once, for the rows this statement
 *      wrote) and their cursors move past it like any skipped message;
 *   4. a message that had not reached someone gets `expired_at` (the sender's status `expired`)
 *      and a `message.expired` webhook for the sender, in the same transaction; after the commit
 *      the sender's sockets get the `message.expired` frame.
 *
 * Lock order inside one sweep: message rows (only sweepers lock them, and never wait for one:
 * SKIP LOCKED), then member rows in the global order. Cursor statements lock member rows only.
 * An ack that waited for the sweeper reads the mark from the row's newest version and treats the
 * message as expired too — one winner per (message, member): delivered if acked before the
 * instant, expired otherwise. A message acked (delivered) before it expired stays delivered.
 */

export const EXPIRY = {
  /** Messages claimed per sweep transaction. */
  batch: 200,
  /** A local timer never waits longer than this (a far expiry is picked up by the poll anyway). */
  maxTimerMs: 60_000,
} as const

interface Due {
  id: string
  conversation_id: string
  seq: string | number
  sender_id: string
  client_msg_id: string
  expires_at: Date | string
}

export interface ExpiredEvent {
  message_id: string
  conversation_id: string
  client_msg_id: string
  expires_at: string
  expired_at: string
  /** Handles of the recipients that had not received it (for a group: those members). */
  recipients: string[]
}

const { DELIVERED, PENDING } = CURSOR_SQL

export class ExpirySweeper {
  private timer: ReturnType<typeof setInterval> | undefined
  private wake: ReturnType<typeof setTimeout> | undefined
  private wakeAt = Infinity
  private running: Promise<void> | null = null
  private again = false
  private stopped = false

  constructor(
    private readonly ctx: AppContext,
    private readonly pollMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), this.pollMs)
    this.timer.unref?.()
    this.kick() // what expired while no process was running
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    if (this.wake) clearTimeout(this.wake)
    await this.running
  }

  /**
   * A message of this process expires at `at`: sweep right then rather than at the next poll
   * (one timer, for the earliest pending instant). Other processes' messages are found by the poll.
   */
  schedule(at: Date): void {
    if (this.stopped) return
    const t = at.getTime()
    if (t >= this.wakeAt) return
    if (this.wake) clearTimeout(this.wake)
    this.wakeAt = t
    // A few ms late, so the database's clock (which decides) has passed the instant too.
    this.wake = setTimeout(() => {
      this.wake = undefined
      this.wakeAt = Infinity
      this.kick()
    }, Math.min(EXPIRY.maxTimerMs, Math.max(0, t - Date.now() + 20)))
    this.wake.unref?.()
  }

  /** Sweep now, unless this worker already is (then once more after it). */
  kick(): void {
    if (this.stopped) return
    if (this.running) {
      this.again = true
      return
    }
    this.running = this.work()
      .catch((err) => this.ctx.log.warn({ err }, 'expiry sweep failed; retried on the next poll'))
      .finally(() => {
        this.running = null
        if (this.again) {
          this.again = false
          this.kick()
        }
      })
  }

  /** Sweeps until nothing is due; resolves when done (tests). */
  async settled(): Promise<void> {
    await this.running
    while ((await this.sweepOnce()) > 0) {}
  }

  private async work(): Promise<void> {
    while (!this.stopped && (await this.sweepOnce()) >= EXPIRY.batch) {}
  }

  /** One transaction: claim up to a batch, expire it for whoever had not received it, notify. Returns how many were claimed. */
  async sweepOnce(): Promise<number> {
    const ctx = this.ctx
    const out = await ctx.database.transaction(async (q) => {
      const due = await q.query<Due>(
        `WITH due AS (
           SELECT m.id FROM messages m
           WHERE m.expires_at <= now() AND m.expiry_swept_at IS NULL AND m.expires_at IS NOT NULL
           ORDER BY m.expires_at LIMIT $1
           FOR UPDATE SKIP LOCKED
         )
         UPDATE messages m SET expiry_swept_at = now() FROM due WHERE m.id = due.id
         RETURNING m.id, m.conversation_id, m.seq, m.sender_id, m.client_msg_id, m.expires_at`,
        [EXPIRY.batch],
      )
      if (due.length === 0) return { due, events: [] as { senderId: string; event: ExpiredEvent }[], released: new Map<string, number>() }
      const conversations = [...new Set(due.map((d) => d.conversation_id))]
      await q.query(
        `WITH k AS MATERIALIZED (
           SELECT mm.agent_id, mm.conversation_id FROM conversation_members mm
           WHERE mm.conversation_id = ANY($1::text[]) AND mm.left_at IS NULL
           ORDER BY mm.agent_id, mm.conversation_id
           FOR UPDATE OF mm
         )
         UPDATE conversation_members mm SET expiry_mark = now() FROM k
         WHERE mm.agent_id = k.agent_id AND mm.conversation_id = k.conversation_id`,
        [conversations],
      )
      // A new statement: its snapshot follows the locks, so every ack that won them is seen.
      const rows = await q.query<{ kind: 'new' | 'old'; id: string; agent_id: string }>(
        `WITH d AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS d(id, c, seq)),
         ins AS (
           INSERT INTO delivery_skips (agent_id, conversation_id, seq, expired)
           SELECT mm.agent_id, d.c, d.seq, true FROM d
           JOIN messages m ON m.conversation_id = d.c AND m.seq = d.seq
           JOIN conversation_members mm ON mm.conversation_id = d.c AND mm.left_at IS NULL
           WHERE m.seq > ${DELIVERED} AND ${PENDING}
           ORDER BY 1, 2, 3
           ON CONFLICT DO NOTHING
           RETURNING agent_id, conversation_id, seq
         )
         SELECT 'new' AS kind, d.id, ins.agent_id FROM ins JOIN d ON d.c = ins.conversation_id AND d.seq = ins.seq
         UNION ALL
         -- Members for whom a cursor statement that moved past it (sync's positional ack, a
         -- read-through) already recorded it expired. (Members skipped at the backlog cap were
         -- told to the sender at send time, as skipped_recipients; they are not expiries.)
         SELECT 'old', d.id, s.agent_id FROM d
         JOIN messages m ON m.conversation_id = d.c AND m.seq = d.seq
         JOIN conversation_members mm ON mm.conversation_id = d.c AND mm.agent_id <> m.sender_id AND m.seq >= mm.joined_seq
         JOIN delivery_skips s ON s.agent_id = mm.agent_id AND s.conversation_id = d.c AND s.seq = d.seq AND s.expired`,
        [due.map((d) => d.id), due.map((d) => d.conversation_id), due.map((d) => Number(d.seq))],
      )
      const missed = new Map<string, Set<string>>()
      const released = new Map<string, number>()
      for (const r of rows) {
        let set = missed.get(r.id)
        if (!set) missed.set(r.id, (set = new Set()))
        set.add(r.agent_id)
        if (r.kind === 'new') released.set(r.agent_id, (released.get(r.agent_id) ?? 0) + 1)
      }
      const expired = due.filter((d) => missed.has(d.id))
      const events: { senderId: string; event: ExpiredEvent }[] = []
      if (expired.length > 0) {
        const [{ at }] = (await q.query<{ at: Date | string }>(
          `UPDATE messages SET expired_at = now() WHERE id = ANY($1::text[]) RETURNING now() AS at`,
          [expired.map((d) => d.id)],
        )) as [{ at: Date | string }]
        // Handles through this transaction's connection: with the embedded database (one
        // connection) a query outside it would wait for this transaction forever.
        const who = [...new Set(expired.flatMap((d) => [...missed.get(d.id)!]))]
        const named = new Map(
          (await q.query<{ id: string; handle: string }>(`SELECT id, handle FROM agents WHERE id = ANY($1::text[])`, [who])).map((r) => [r.id, r.handle]),
        )
        for (const d of expired) {
          const handles = [...missed.get(d.id)!].map((id) => named.get(id) ?? 'unknown')
          const event: ExpiredEvent = {
            message_id: d.id,
            conversation_id: d.conversation_id,
            client_msg_id: d.client_msg_id,
            expires_at: new Date(d.expires_at).toISOString(),
            expired_at: new Date(at).toISOString(),
            recipients: handles.sort(),
          }
          await enqueue(q, 'message.expired', d.id, event, { agents: [d.sender_id] })
          events.push({ senderId: d.sender_id, event })
        }
      }
      return { due, events, released }
    })
    for (const [agentId, n] of out.released) this.ctx.backlog.release(agentId, n)
    for (const { senderId, event } of out.events) {
      const sender = await ctx.agents.get(senderId)
      if (sender && sender.pausedByOwner !== 'full') ctx.push.toAgents([senderId], JSON.stringify({ type: 'message.expired', payload: event }))
    }
    return out.due.length
  }
}
