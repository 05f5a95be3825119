import type { Database, RawSql } from '../../db/client.ts'
import type { Logger } from '../../lib/log.ts'
import { MESSAGE_COLUMNS, rowToMessage, type MessageRow, type StoredMessage } from './shape.ts'

/** One message waiting for the next group commit. */
export interface WriteJob {
  id: string
  conversationId: string
  senderId: string
  clientMsgId: string
  type: string
  content: Record<string, unknown>
  metadata: Record<string, unknown>
  createdAt: Date
  /** One envelope per recipient. */
  recipientIds: string[]
  /** A reply by the non-initiator: establish the direct conversation in the same transaction. */
  establish?: { agentA: string; agentB: string }
}

export interface WriteResult {
  message: StoredMessage
  /** True when (conversation, sender, client_msg_id) already existed: nothing was written. */
  replay: boolean
  /** Envelope positions by recipient (empty on replay). */
  positions: Map<string, bigint>
}

interface Pending {
  job: WriteJob
  resolve: (r: WriteResult) => void
  reject: (e: unknown) => void
}

// Deadlocks, serialisation failures, and a duplicate client_msg_id committed by another process
// between our replay check and insert (the retry sees it as a replay).
const RETRYABLE = new Set(['40P01', '40001', '23505'])
const MAX_BATCH = 1000

/**
 * Group commit for sends. Concurrent sends queue here; one transaction writes everything queued
 * since the previous flush (multi-row inserts through `unnest`), so under load a flush carries
 * hundreds of messages for the price of one commit. A send's promise resolves only after its
 * transaction committed: a 201 always means the row is durable.
 *
 * While a flush runs, new sends accumulate; the next flush starts as soon as it finishes. No
 * timer: an idle server writes a lone send at once, a busy one batches by itself.
 */
export class MessageWriter {
  private queue: Pending[] = []
  private running = false
  private readonly idle: (() => void)[] = []

  constructor(
    private readonly database: Database,
    private readonly log: Logger,
  ) {}

  write(job: WriteJob): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject })
      if (!this.running) void this.loop()
    })
  }

  /** Resolves once nothing is queued or in flight (graceful shutdown). */
  flushed(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve()
    return new Promise((r) => this.idle.push(r))
  }

  private async loop(): Promise<void> {
    this.running = true
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH)
      await this.flush(batch)
    }
    this.running = false
    for (const r of this.idle.splice(0)) r()
  }

  private async flush(batch: Pending[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await this.database.transaction((q) => writeBatch(q, batch.map((p) => p.job)))
        batch.forEach((p, i) => p.resolve(results[i]!))
        return
      } catch (err) {
        const code = (err as { code?: string })?.code ?? (err as { cause?: { code?: string } })?.cause?.code
        if (attempt < 4 && code && RETRYABLE.has(code)) continue
        this.log.error({ err, n: batch.length }, 'message batch failed')
        for (const p of batch) p.reject(err)
        return
      }
    }
  }
}

const dedupKey = (j: { conversationId: string; senderId: string; clientMsgId: string }) =>
  `${j.conversationId}\u0000${j.senderId}\u0000${j.clientMsgId}`

/** The transaction body of one flush. Exported for the cold-send path, which writes one job. */
export async function writeBatch(q: RawSql, jobs: WriteJob[]): Promise<WriteResult[]> {
  const results: (WriteResult | undefined)[] = new Array(jobs.length)

  // 1. Replays: (conversation, sender, client_msg_id) already stored, or twice in this batch.
  const existing = new Map<string, StoredMessage>()
  const rows = await q.query<MessageRow>(
    `SELECT ${MESSAGE_COLUMNS} FROM messages m
     JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(c, s, cm)
       ON m.conversation_id = k.c AND m.sender_id = k.s AND m.client_msg_id = k.cm`,
    [jobs.map((j) => j.conversationId), jobs.map((j) => j.senderId), jobs.map((j) => j.clientMsgId)],
  )
  for (const r of rows) existing.set(dedupKey(rowToMessage(r)), rowToMessage(r))
  const fresh: number[] = []
  const firstInBatch = new Map<string, number>()
  jobs.forEach((j, i) => {
    const key = dedupKey(j)
    const stored = existing.get(key)
    if (stored) results[i] = { message: stored, replay: true, positions: new Map() }
    else if (firstInBatch.has(key)) results[i] = undefined // resolved from its twin below
    else {
      firstInBatch.set(key, i)
      fresh.push(i)
    }
  })

  if (fresh.length > 0) {
    // 2. Sequence numbers: advance each conversation's counter once for all its new messages.
    const perConv = new Map<string, number>()
    for (const i of fresh) perConv.set(jobs[i]!.conversationId, (perConv.get(jobs[i]!.conversationId) ?? 0) + 1)
    const convIds = [...perConv.keys()].sort() // one lock order for every flush: no deadlocks between them
    const seqRows = await q.query<{ id: string; last_seq: string | number }>(
      `UPDATE conversations c SET last_seq = c.last_seq + v.n, last_message_at = now()
       FROM unnest($1::text[], $2::int[]) AS v(id, n)
       WHERE c.id = v.id
       RETURNING c.id, c.last_seq`,
      [convIds, convIds.map((c) => perConv.get(c)!)],
    )
    const next = new Map<string, number>()
    for (const r of seqRows) next.set(r.id, Number(r.last_seq) - perConv.get(r.id)! + 1)
    const messages: StoredMessage[] = fresh.map((i) => {
      const j = jobs[i]!
      const seq = next.get(j.conversationId)
      if (seq === undefined) throw new Error(`conversation ${j.conversationId} vanished`)
      next.set(j.conversationId, seq + 1)
      return { id: j.id, conversationId: j.conversationId, seq, senderId: j.senderId, clientMsgId: j.clientMsgId, type: j.type, content: j.content, metadata: j.metadata, createdAt: j.createdAt }
    })

    // 3. Messages.
    await q.query(
      `INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, type, content, metadata, created_at)
       SELECT id, c, s, snd, cm, ty, ct::jsonb, md::jsonb, at::timestamptz
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
         AS v(id, c, s, snd, cm, ty, ct, md, at)`,
      [
        messages.map((m) => m.id),
        messages.map((m) => m.conversationId),
        messages.map((m) => m.seq),
        messages.map((m) => m.senderId),
        messages.map((m) => m.clientMsgId),
        messages.map((m) => m.type),
        messages.map((m) => JSON.stringify(m.content)),
        messages.map((m) => JSON.stringify(m.metadata)),
        messages.map((m) => m.createdAt.toISOString()),
      ],
    )

    // 4. Envelopes, one per recipient, positions returned for the del_ ids.
    const env = { r: [] as string[], m: [] as string[], c: [] as string[], s: [] as number[], snd: [] as string[], at: [] as string[] }
    messages.forEach((m, k) => {
      for (const r of jobs[fresh[k]!]!.recipientIds) {
        env.r.push(r)
        env.m.push(m.id)
        env.c.push(m.conversationId)
        env.s.push(m.seq)
        env.snd.push(m.senderId)
        env.at.push(m.createdAt.toISOString())
      }
    })
    const positions = new Map<string, Map<string, bigint>>()
    if (env.r.length > 0) {
      const posRows = await q.query<{ message_id: string; recipient_id: string; position: string }>(
        `INSERT INTO envelopes (recipient_id, message_id, conversation_id, seq, sender_id, created_at)
         SELECT r, m, c, s, snd, at::timestamptz FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) AS v(r, m, c, s, snd, at)
         RETURNING message_id, recipient_id, position::text AS position`,
        [env.r, env.m, env.c, env.s, env.snd, env.at],
      )
      for (const p of posRows) {
        let byRecipient = positions.get(p.message_id)
        if (!byRecipient) positions.set(p.message_id, (byRecipient = new Map()))
        byRecipient.set(p.recipient_id, BigInt(p.position))
      }
    }

    // 5. Replies that establish a direct conversation: flag it and add both agents to each other's contacts.
    const establish = fresh.map((i) => jobs[i]!).filter((j) => j.establish)
    if (establish.length > 0) {
      await q.query(`UPDATE conversations SET established = true, established_at = now() WHERE id = ANY($1::text[]) AND NOT established`, [
        establish.map((j) => j.conversationId),
      ])
      const owners: string[] = []
      const others: string[] = []
      for (const j of establish) {
        owners.push(j.establish!.agentA, j.establish!.agentB)
        others.push(j.establish!.agentB, j.establish!.agentA)
      }
      await q.query(
        `INSERT INTO contacts (owner_id, contact_id) SELECT o, c FROM unnest($1::text[], $2::text[]) AS v(o, c) ON CONFLICT DO NOTHING`,
        [owners, others],
      )
    }

    fresh.forEach((i, k) => {
      results[i] = { message: messages[k]!, replay: false, positions: positions.get(messages[k]!.id) ?? new Map() }
    })
  }

  // Twins inside the batch replay their first copy.
  jobs.forEach((j, i) => {
    if (!results[i]) results[i] = { message: results[firstInBatch.get(dedupKey(j))!]!.message, replay: true, positions: new Map() }
  })
  return results as WriteResult[]
}
