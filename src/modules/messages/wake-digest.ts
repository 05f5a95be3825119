import type { AppContext } from '../../context.ts'
import { enqueue } from '../../delivery/webhooks/outbox.ts'

/*
 * `wake.digest` at the end of quiet hours (issue 16): every worker looks every
 * WAKE_DIGEST_POLL_MS for agents whose latest quiet window ended within the last hour, and claims
 * each (agent, window end) by inserting its row in `wake_digests` — the primary key makes exactly
 * one worker of one process the sender, and the webhook is enqueued in the same transaction, so a
 * crash sends neither or both (the frame follows the commit). A window longer ago than an hour
 * (the whole network down for longer) gets no digest: the agent's sync has everything anyway.
 *
 * The windows are computed in SQL from each agent's `safety.wake.quiet_hours` in its own time
 * zone: the latest local end not after now, and its start (across midnight when start > end).
 */

const LOOKBACK_S = 3600

const CLAIM_SQL = `
WITH q AS (
  SELECT a.id, a.safety->'wake' AS w, a.safety->'wake'->'quiet_hours' AS qh
  FROM agents a
  WHERE jsonb_typeof(a.safety->'wake'->'quiet_hours') = 'object' AND a.status IN ('active', 'restricted')
),
t AS (
  SELECT id, w, qh, qh->>'tz' AS tz, (qh->>'start')::time AS s, (qh->>'end')::time AS e,
         date_trunc('day', now() AT TIME ZONE (qh->>'tz')) + (qh->>'end')::time AS end_today
  FROM q
),
ends AS (
  SELECT id, w, tz, s, e, CASE WHEN (end_today AT TIME ZONE tz) > now() THEN end_today - interval '1 day' ELSE end_today END AS end_local
  FROM t
),
windows AS (
  SELECT id, w, (end_local AT TIME ZONE tz) AS ended_at,
         ((end_local - CASE WHEN s < e THEN e - s ELSE interval '24 hours' - (s - e) END) AT TIME ZONE tz) AS started_at
  FROM ends
)
INSERT INTO wake_digests (agent_id, window_end, window_start)
SELECT id, ended_at, started_at FROM windows
WHERE ended_at > now() - make_interval(secs => $1)
  AND (w->>'since' IS NULL OR ended_at > (w->>'since')::timestamptz)
ORDER BY id
ON CONFLICT DO NOTHING
RETURNING agent_id, window_start, window_end`

const HELD_SQL = `
SELECT m.conversation_id, count(*)::int AS n
FROM conversation_members mm
JOIN messages m ON m.conversation_id = mm.conversation_id AND m.seq >= mm.joined_seq
JOIN agents sa ON sa.id = m.sender_id
WHERE mm.agent_id = $1 AND mm.left_at IS NULL AND m.sender_id <> $1 AND NOT sa.is_system
  AND m.created_at >= $2 AND m.created_at < $3
GROUP BY m.conversation_id
ORDER BY n DESC, m.conversation_id
LIMIT 100`

interface Claimed {
  agent_id: string
  window_start: Date | string
  window_end: Date | string
}

export class WakeDigests {
  private timer: ReturnType<typeof setInterval> | undefined
  private running: Promise<void> | null = null

  constructor(
    private readonly ctx: AppContext,
    private readonly pollMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), this.pollMs)
    this.timer.unref?.()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }

  kick(): void {
    if (this.running) return
    this.running = this.sweep()
      .catch((err) => this.ctx.log.warn({ err }, 'wake digests failed; retried on the next poll'))
      .finally(() => {
        this.running = null
      })
  }

  private async sweep(): Promise<void> {
    const sent: { agentId: string; payload: Record<string, unknown> }[] = []
    await this.ctx.database.transaction(async (q) => {
      const rows = await q.query<Claimed>(CLAIM_SQL, [LOOKBACK_S])
      for (const r of rows) {
        const from = new Date(r.window_start)
        const until = new Date(r.window_end)
        const held = await q.query<{ conversation_id: string; n: number }>(HELD_SQL, [r.agent_id, from.toISOString(), until.toISOString()])
        const total = held.reduce((sum, h) => sum + Number(h.n), 0)
        await q.query(`UPDATE wake_digests SET held = $3 WHERE agent_id = $1 AND window_end = $2`, [r.agent_id, until.toISOString(), total])
        const agent = await this.ctx.agents.get(r.agent_id)
        const payload = {
          agent: agent?.handle ?? null,
          quiet_from: from.toISOString(),
          quiet_until: until.toISOString(),
          held: total,
          conversations: held.map((h) => ({ conversation_id: h.conversation_id, count: Number(h.n) })),
        }
        await enqueue(q, 'wake.digest', `${r.agent_id}:${until.toISOString()}`, payload, { agents: [r.agent_id] })
        sent.push({ agentId: r.agent_id, payload })
      }
    })
    for (const s of sent) {
      const a = await this.ctx.agents.get(s.agentId)
      if (a && a.pausedByOwner !== 'full') this.ctx.push.toAgents([s.agentId], JSON.stringify({ type: 'wake.digest', payload: s.payload }))
    }
  }
}
