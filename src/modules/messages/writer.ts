import type { Database, RawSql } from '../../db/client.ts'
import { runIsolated, TRANSIENT } from '../../db/isolate.ts'
import { ApiError } from '../../http/errors.ts'
import type { Logger } from '../../lib/log.ts'
import type { Metrics } from '../../metrics/metrics.ts'
import { MESSAGE_NEW_OUTBOX_CTE } from '../../delivery/webhooks/outbox.ts'
import { fnv1a } from '../../shard/vshard.ts'
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
  /** `createdAt + metadata.ttl_seconds` (issue 16.3: expiry); absent: never expires. */
  expiresAt?: Date
  /** Group members skipped at the backlog cap: recorded as delivery exceptions in the same statement. */
  skipped?: string[]
  /** A reply by the non-initiator: establish the direct conversation in the same transaction. */
  establish?: { agentA: string; agentB: string }
}

export interface WriteResult {
  message: StoredMessage
  /** True when (conversation, sender, client_msg_id) already existed: nothing was written. */
  replay: boolean
}

interface Pending {
  /** performance.now() when queued: the head's age is the wait a new send would start with. */
  at: number
  job: WriteJob
  resolve: (r: WriteResult) => void
  reject: (e: unknown) => void
}

// Deadlocks, serialisation failures, and a duplicate client_msg_id committed by another flush or
// process between the replay check and the insert (the retry then sees it as a replay).
const RETRYABLE = new Set([...TRANSIENT, '23505'])
const MAX_BATCH = 1000

/** A queue with one flush in flight. */
interface Lane {
  queue: Pending[]
  busy: boolean
}

/**
 * Group commit for sends, in lanes. Every conversation hashes to one lane, and each lane has one
 * flush in flight, so no two statements of this worker ever touch the same conversation row at
 * once — no lock waits among our own flushes. Between processes sharing the database the
 * statement takes its conversation row locks in id order (WRITE_SQL), so concurrent flushes
 * anywhere can wait on each other but never deadlock.
 *
 * One statement writes everything a lane queued since its last flush started (sequence numbers
 * and message rows from one JSON parameter), so under load a flush carries hundreds of messages
 * for the price of one commit. A send's promise resolves only after its statement committed: a
 * 201 always means durable. No timer: an idle lane writes a lone send at once.
 */
export class MessageWriter {
  private readonly lanes: Lane[]
  private queued = 0
  private inFlight = 0
  private readonly idle: (() => void)[] = []

  constructor(
    private readonly database: Database,
    private readonly log: Logger,
    laneCount = 4,
    /** Queued sends beyond which `overloaded()` says so (callers answer 503 at once). */
    private readonly maxQueue = 5000,
    private readonly metrics?: Pick<Metrics, 'writerFlushed'>,
    /** Queueing delay (ms, of the oldest queued send) beyond which `overloaded()` says so. */
    private readonly maxWaitMs = 1000,
  ) {
    this.lanes = Array.from({ length: Math.max(1, laneCount) }, () => ({ queue: [], busy: false }))
  }

  /**
   * Past a bound, a new send would wait behind seconds of work: refuse it now (503) rather than
   * let every sender's latency grow with the queue. Two bounds: the number queued, and the age
   * of the oldest queued send — a count alone cannot tell a fast database from a slow one, and
   * a slow flush (Postgres saturated) makes the queue old long before it is long.
   */
  overloaded(): boolean {
    if (this.queued >= this.maxQueue) return true
    if (this.queued === 0) return false
    const now = performance.now()
    for (const lane of this.lanes) {
      const head = lane.queue[0]
      if (head && now - head.at > this.maxWaitMs) return true
    }
    return false
  }

  write(job: WriteJob): Promise<WriteResult> {
    if (this.overloaded()) return Promise.reject(overloadError())
    const lane = this.lanes[fnv1a(job.conversationId) % this.lanes.length]!
    return new Promise((resolve, reject) => {
      lane.queue.push({ at: performance.now(), job, resolve, reject })
      this.queued++
      if (!lane.busy) {
        lane.busy = true
        queueMicrotask(() => void this.pump(lane))
      }
    })
  }

  /** Resolves once nothing is queued or in flight (graceful shutdown). */
  flushed(): Promise<void> {
    if (this.inFlight === 0 && this.queued === 0) return Promise.resolve()
    return new Promise((r) => this.idle.push(r))
  }

  private async pump(lane: Lane): Promise<void> {
    while (lane.queue.length > 0) {
      const batch = lane.queue.splice(0, MAX_BATCH)
      this.queued -= batch.length
      this.inFlight++
      const started = performance.now()
      try {
        await this.flush(batch)
      } finally {
        this.inFlight--
        this.metrics?.writerFlushed(batch.length, (performance.now() - started) / 1000)
      }
    }
    lane.busy = false
    if (this.inFlight === 0 && this.queued === 0) for (const r of this.idle.splice(0)) r()
  }

  /** One statement per flush; a failing job is isolated (db/isolate.ts) so it never fails the others. */
  private async flush(batch: Pending[]): Promise<void> {
    const outcomes = await runIsolated(
      batch.map((p) => p.job),
      (jobs) => (jobs.some((j) => j.establish) ? this.database.transaction((q) => writeBatch(q, jobs)) : writeBatch(this.database.fast, jobs)),
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

/** 503 with Retry-After: the writer's queue is past its bound. */
export const overloadError = () =>
  new ApiError('SERVICE_UNAVAILABLE', 'The server is at capacity; retry shortly', { retry_after_ms: 1000 }, { 'Retry-After': '1' })

const dedupKey = (j: { conversationId: string; senderId: string; clientMsgId: string }) =>
  `${j.conversationId}\u0000${j.senderId}\u0000${j.clientMsgId}`

/*
 * One statement: find replays, lock the conversations in id order, advance each one's seq
 * counter once, number the new messages in batch order, insert them (seq order, so positions
 * rise with seq), record skipped group members, and return what was written. A single statement
 * is atomic on its own, so a flush without establishments needs no BEGIN/COMMIT. Delivery state
 * is not written here at all: recipients' cursors move when they ack (delivery/cursors.ts).
 */
const WRITE_SQL = `
WITH j AS (
  -- text, then json: Bun's native client would encode a string bound straight to json as a JSON string.
  SELECT * FROM json_to_recordset($1::text::json)
    AS x(ord int, id text, c text, snd text, cm text, ty text, ct jsonb, md jsonb, at timestamptz, ex timestamptz, sk json)
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
-- Row locks in one order for every writer in every process: concurrent flushes may wait, never deadlock.
locked AS MATERIALIZED (
  SELECT cv.id, counts.n FROM conversations cv JOIN counts ON counts.c = cv.id ORDER BY cv.id FOR UPDATE OF cv
),
seqs AS (
  UPDATE conversations cv SET last_seq = cv.last_seq + locked.n, last_message_at = now()
  FROM locked WHERE cv.id = locked.id
  RETURNING cv.id, cv.last_seq, locked.n
),
-- The planner sees these CTEs as a row or two (it cannot know a batch's size), so every join
-- between two of them is a nested loop: quadratic in the batch (10,000 comparisons for 100
-- messages, half the statement). Each conversation's base seq is therefore looked up in one
-- object built once, and the lock and update above join the table by its primary key.
bases AS MATERIALIZED (SELECT jsonb_object_agg(id, last_seq - n) AS m FROM seqs),
numbered AS (
  SELECT fresh.*, (bases.m ->> fresh.c)::bigint + row_number() OVER (PARTITION BY fresh.c ORDER BY fresh.ord) AS seq
  FROM fresh CROSS JOIN bases WHERE bases.m ? fresh.c
),
ins AS (
  INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, type, content, metadata, created_at, expires_at)
  SELECT id, c, seq, snd, cm, ty, ct, md, at, ex FROM numbered ORDER BY c, seq
  RETURNING id
),
skips AS (
  INSERT INTO delivery_skips (agent_id, conversation_id, seq)
  SELECT s.value, n.c, n.seq FROM numbered n CROSS JOIN LATERAL json_array_elements_text(n.sk) AS s(value)
  WHERE n.sk IS NOT NULL
  ON CONFLICT DO NOTHING
),
${MESSAGE_NEW_OUTBOX_CTE}
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
    return { ord: i, id: j.id, c: j.conversationId, snd: j.senderId, cm: j.clientMsgId, ty: j.type, ct: j.content, md: j.metadata, at: j.createdAt.toISOString(), ex: j.expiresAt?.toISOString() ?? null, sk: j.skipped?.length ? j.skipped : null }
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
    // Sorted: two processes establishing overlapping pairs insert the same keys in the same order.
    const pairs = establish
      .flatMap((j) => [
        { o: j.establish!.agentA, c: j.establish!.agentB },
        { o: j.establish!.agentB, c: j.establish!.agentA },
      ])
      .sort((x, y) => (x.o === y.o ? (x.c < y.c ? -1 : 1) : x.o < y.o ? -1 : 1))
    await q.query(
      `INSERT INTO contacts (owner_id, contact_id) SELECT o, c FROM json_to_recordset($1::text::json) AS v(o text, c text) ORDER BY o, c ON CONFLICT DO NOTHING`,
      [JSON.stringify(pairs)],
    )
  }
  return results
}
