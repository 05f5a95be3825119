import type { Database, RawSql } from '../../db/client.ts'
import { runIsolated, TRANSIENT } from '../../db/isolate.ts'
import type { Logger } from '../../lib/log.ts'
import { rowToMessage, type MessageRow, type StoredMessage } from './shape.ts'

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
}

interface Pending {
  job: WriteJob
  resolve: (r: WriteResult) => void
  reject: (e: unknown) => void
}

// Deadlocks, serialisation failures, and a duplicate client_msg_id committed by another flush or
// process between the replay check and the insert (the retry then sees it as a replay).
const RETRYABLE = new Set([...TRANSIENT, '23505'])
const MAX_BATCH = 1000

/**
 * Group commit for sends. Concurrent sends queue here; one statement writes everything queued
 * since the last flush started (sequence numbers, messages and envelopes from one JSON
 * parameter), so under load a flush carries hundreds of messages for the price of one commit. A
 * send's promise resolves only after its statement committed: a 201 always means durable.
 *
 * No timer: an idle server writes a lone send at once; a busy one batches by itself while up to
 * `WRITER_CONCURRENCY` flushes are in flight.
 */
export class MessageWriter {
  private queue: Pending[] = []
  private inFlight = 0
  private readonly idle: (() => void)[] = []

  constructor(
    private readonly database: Database,
    private readonly log: Logger,
    /** Flushes in flight at once: a new batch need not wait for the previous commit's round trip. */
    private readonly maxConcurrent = 4,
  ) {}

  write(job: WriteJob): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject })
      if (this.inFlight < this.maxConcurrent) queueMicrotask(() => this.pump())
    })
  }

  /** Resolves once nothing is queued or in flight (graceful shutdown). */
  flushed(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve()
    return new Promise((r) => this.idle.push(r))
  }

  private pump(): void {
    while (this.inFlight < this.maxConcurrent && this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH)
      this.inFlight++
      void this.flush(batch).finally(() => {
        this.inFlight--
        if (this.queue.length > 0) this.pump()
        else if (this.inFlight === 0) for (const r of this.idle.splice(0)) r()
      })
    }
  }

  /** One statement per flush; a failing job is isolated (db/isolate.ts) so it never fails the others. */
  private async flush(batch: Pending[]): Promise<void> {
    const outcomes = await runIsolated(
      batch.map((p) => p.job),
      (jobs) => (jobs.some((j) => j.establish) ? this.database.transaction((q) => writeBatch(q, jobs)) : writeBatch(this.database.raw, jobs)),
      {
        retryable: RETRYABLE,
        // The route that gets a job's error logs it once; here only what happened to the batch.
        onFailure: (err, n, action) => this.log.warn({ err: (err as Error)?.message, code: (err as { code?: string })?.code, n, action }, 'message batch failed'),
      },
    )
    batch.forEach((p, i) => {
      const o = outcomes[i]!
      if (o.ok) p.resolve(o.value)
      else p.reject(o.error)
    })
  }
}

const dedupKey = (j: { conversationId: string; senderId: string; clientMsgId: string }) =>
  `${j.conversationId}\u0000${j.senderId}\u0000${j.clientMsgId}`

/*
 * One statement: find replays, advance each conversation's seq counter once, number the new
 * messages in batch order, insert messages and envelopes, and return what was written. A single
 * statement is atomic on its own, so a flush without establishments needs no BEGIN/COMMIT.
 */
const WRITE_SQL = `
WITH j AS (
  SELECT * FROM json_to_recordset($1::json)
    AS x(ord int, id text, c text, snd text, cm text, ty text, ct jsonb, md jsonb, at timestamptz, rs json, g bool)
),
dup AS (
  -- LATERAL: one unique-index probe per row, never a scan of messages whatever the planner guesses.
  SELECT j.ord, m.id, m.conversation_id, m.seq, m.sender_id, m.client_msg_id, m.type, m.content, m.metadata, m.created_at
  FROM j CROSS JOIN LATERAL (
    SELECT * FROM messages m WHERE m.conversation_id = j.c AND m.sender_id = j.snd AND m.client_msg_id = j.cm LIMIT 1
  ) m
),
fresh AS (SELECT j.* FROM j WHERE NOT EXISTS (SELECT 1 FROM dup WHERE dup.ord = j.ord)),
counts AS (SELECT c, count(*)::int AS n FROM fresh GROUP BY c),
seqs AS (
  UPDATE conversations cv SET last_seq = cv.last_seq + counts.n, last_message_at = now()
  FROM counts WHERE cv.id = counts.c
  RETURNING cv.id, cv.last_seq, counts.n
),
numbered AS (
  SELECT fresh.*, seqs.last_seq - seqs.n + row_number() OVER (PARTITION BY fresh.c ORDER BY fresh.ord) AS seq
  FROM fresh JOIN seqs ON seqs.id = fresh.c
),
ins AS (
  INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, type, content, metadata, created_at)
  SELECT id, c, seq, snd, cm, ty, ct, md, at FROM numbered
  RETURNING id
),
env AS (
  INSERT INTO envelopes (recipient_id, message_id, conversation_id, seq, sender_id, created_at)
  SELECT r.value, n.id, n.c, n.seq, n.snd, n.at FROM numbered n CROSS JOIN LATERAL json_array_elements_text(n.rs) AS r(value)
  -- Groups: only members still active and joined at or before this seq (the join point holds
  -- even when a join races with a send).
  WHERE NOT n.g OR EXISTS (
    SELECT 1 FROM conversation_members cm
    WHERE cm.conversation_id = n.c AND cm.agent_id = r.value AND cm.left_at IS NULL AND cm.joined_seq <= n.seq)
)
SELECT 'new' AS kind, n.ord, n.seq, NULL::text AS id, NULL::text AS conversation_id, NULL::text AS sender_id,
       NULL::text AS client_msg_id, NULL::text AS type, NULL::jsonb AS content, NULL::jsonb AS metadata, NULL::timestamptz AS created_at
FROM numbered n
UNION ALL
SELECT 'dup', dup.ord, dup.seq, dup.id, dup.conversation_id, dup.sender_id, dup.client_msg_id, dup.type, dup.content, dup.metadata, dup.created_at
FROM dup`

interface WriteRow extends Partial<MessageRow> {
  kind: 'new' | 'dup'
  ord: number
  seq: string | number
}

/** The statement(s) of one flush. Also used by the cold-send path inside its own transaction. */
export async function writeBatch(q: RawSql, jobs: WriteJob[]): Promise<WriteResult[]> {
  // Twins inside one batch (same conversation, sender and client_msg_id) are written once.
  const first = new Map<string, number>()
  const unique: number[] = []
  jobs.forEach((j, i) => {
    const k = dedupKey(j)
    if (!first.has(k)) {
      first.set(k, i)
      unique.push(i)
    }
  })
  const payload = unique.map((i) => {
    const j = jobs[i]!
    return { ord: i, id: j.id, c: j.conversationId, snd: j.senderId, cm: j.clientMsgId, ty: j.type, ct: j.content, md: j.metadata, at: j.createdAt.toISOString(), rs: j.recipientIds, g: j.conversationId.startsWith('grp_') }
  })
  const rows = await q.query<WriteRow>(WRITE_SQL, [JSON.stringify(payload)])
  const results: WriteResult[] = new Array(jobs.length)
  for (const r of rows) {
    const ord = Number(r.ord)
    if (r.kind === 'dup') {
      results[ord] = { message: rowToMessage(r as MessageRow), replay: true }
      continue
    }
    const j = jobs[ord]!
    results[ord] = {
      message: { id: j.id, conversationId: j.conversationId, seq: Number(r.seq), senderId: j.senderId, clientMsgId: j.clientMsgId, type: j.type, content: j.content, metadata: j.metadata, createdAt: j.createdAt },
      replay: false,
    }
  }
  for (const i of unique) if (!results[i]) throw new Error(`conversation ${jobs[i]!.conversationId} vanished during the write`)
  jobs.forEach((j, i) => {
    if (!results[i]) results[i] = { message: results[first.get(dedupKey(j))!]!.message, replay: true }
  })

  // Replies that establish a direct conversation: flag it and add both agents to each other's contacts.
  const establish = unique.map((i) => jobs[i]!).filter((j, k) => j.establish && !results[unique[k]!]!.replay)
  if (establish.length > 0) {
    await q.query(`UPDATE conversations SET established = true, established_at = now() WHERE id = ANY($1::text[]) AND NOT established`, [
      establish.map((j) => j.conversationId),
    ])
    const pairs = establish.flatMap((j) => [
      { o: j.establish!.agentA, c: j.establish!.agentB },
      { o: j.establish!.agentB, c: j.establish!.agentA },
    ])
    await q.query(
      `INSERT INTO contacts (owner_id, contact_id) SELECT o, c FROM json_to_recordset($1::json) AS v(o text, c text) ON CONFLICT DO NOTHING`,
      [JSON.stringify(pairs)],
    )
  }
  return results
}
