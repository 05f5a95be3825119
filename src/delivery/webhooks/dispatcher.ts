import { createHmac } from 'node:crypto'
import type { Config } from '../../config.ts'
import type { Database } from '../../db/client.ts'
import type { Logger } from '../../lib/log.ts'
import type { SecretBox } from '../../lib/secret-box.ts'
import { checkTarget } from './url-guard.ts'
import { envelope } from './outbox.ts'

/*
 * Works the webhook outbox. Every worker of every process runs one dispatcher; they share the
 * rows through Postgres alone:
 *   - a claim is an UPDATE of due rows picked with FOR UPDATE SKIP LOCKED that sets a lease, so
 *     two dispatchers never take the same row, and a dispatcher that dies mid-POST only delays
 *     its rows until the lease ends (then they are retried: at-least-once, same delivery id);
 *   - the circuit breaker is a state on the webhook row (closed → open → probing → closed), moved
 *     by single UPDATEs, so only one dispatcher wins the half-open probe;
 *   - at most PER_WEBHOOK deliveries of one webhook are in flight at once, whoever holds them, so
 *     a slow receiver holds only its own slots and never the dispatcher (or any send).
 */

const BATCH = 50
const PER_WEBHOOK = 5
const MAX_IN_FLIGHT = 200
const RETENTION_MS = 24 * 3600_000

export interface DispatcherDeps {
  database: Database
  log: Logger
  config: Config
  box: SecretBox
  /** `message.new` bodies are built at the first attempt (the public message, as on the socket). */
  buildMessage(messageId: string, agentId: string): Promise<unknown | null>
  /** A delivered `message.new` counts as delivery of the message to that agent. */
  onMessageDelivered(agentId: string, messageId: string): void
}

interface Claimed {
  id: string
  webhook_id: string
  agent_id: string
  event: string
  message_id: string | null
  body: string | null
  attempts: number
  url: string
  secret_enc: string
  probing: boolean
  /** message.new for a message past its expiry (issue 16.3): never delivered, whatever the attempt. */
  expired: boolean
}

export interface WebhookStats {
  pending: number
  dead_letters: number
  open_breakers: number
}

export class WebhookDispatcher {
  private timer: ReturnType<typeof setInterval> | undefined
  private ticking = false
  private readonly inFlight = new Set<Promise<void>>()
  private lastPurge = 0
  private lastStats = 0
  stats: WebhookStats = { pending: 0, dead_letters: 0, open_breakers: 0 }

  constructor(private readonly deps: DispatcherDeps) {}

  start(): void {
    if (this.timer) return
    this.timer = setInterval(() => void this.tick(), this.deps.config.webhookPollMs)
  }

  /** Stops claiming; resolves when the deliveries in flight have finished. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight])
  }

  /** One round: start due probes, claim what there is room for, start those deliveries. */
  async tick(): Promise<void> {
    if (this.ticking) return
    this.ticking = true
    try {
      const room = MAX_IN_FLIGHT - this.inFlight.size
      if (room <= 0) return
      const probes = await this.startProbes()
      const rows = await this.claim(Math.min(BATCH, room), probes)
      const claimedProbes = new Set(rows.filter((r) => r.probing).map((r) => r.webhook_id))
      const idle = probes.filter((id) => !claimedProbes.has(id))
      // A probe with nothing due goes back to open (its cooldown already passed: the next due row probes).
      if (idle.length) await this.deps.database.raw.query(`UPDATE webhooks SET breaker_state = 'open' WHERE id = ANY($1::text[]) AND breaker_state = 'probing'`, [idle])
      for (const r of rows) {
        const p = this.deliver(r)
          .catch((err) => this.deps.log.error({ err: String(err), delivery: r.id }, 'webhook delivery crashed'))
          .finally(() => this.inFlight.delete(p))
        this.inFlight.add(p)
      }
      await this.housekeeping()
    } catch (err) {
      this.deps.log.warn({ err: String(err) }, 'webhook dispatcher round failed')
    } finally {
      this.ticking = false
    }
  }

  /** Open breakers past their cooldown (and probes whose dispatcher vanished) become probing; the winner probes. */
  private async startProbes(): Promise<string[]> {
    const cooldown = this.deps.config.webhookBreakerCooldownMs
    const lease = this.leaseMs()
    const rows = await this.deps.database.raw.query<{ id: string }>(
      `UPDATE webhooks SET breaker_state = 'probing', probe_started_at = now()
       WHERE active AND ((breaker_state = 'open' AND breaker_opened_at <= now() - $1 * interval '1 millisecond')
          OR (breaker_state = 'probing' AND probe_started_at < now() - $2 * interval '1 millisecond'))
       RETURNING id`,
      [cooldown, lease],
    )
    return rows.map((r) => r.id)
  }

  private leaseMs() {
    return this.deps.config.webhookTimeoutMs + 30_000
  }

  private async claim(limit: number, probes: string[]): Promise<Claimed[]> {
    return this.deps.database.raw.query<Claimed>(
      `WITH busy AS (
         SELECT webhook_id, count(*)::int AS n FROM webhook_deliveries
         WHERE state = 'pending' AND lease_until > now() GROUP BY webhook_id
       ),
       due AS (
         SELECT d.id, w.breaker_state = 'probing' AS probing,
           row_number() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.id) + coalesce(b.n, 0) AS rank
         FROM webhook_deliveries d
         JOIN webhooks w ON w.id = d.webhook_id AND w.active
         LEFT JOIN busy b ON b.webhook_id = d.webhook_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND (d.lease_until IS NULL OR d.lease_until < now())
           AND (w.breaker_state = 'closed' OR (w.breaker_state = 'probing' AND w.id = ANY($3::text[])))
       ),
       pick AS (
         SELECT d.id, due.probing FROM webhook_deliveries d JOIN due ON due.id = d.id
         WHERE due.rank <= CASE WHEN due.probing THEN 1 ELSE ${PER_WEBHOOK} END
         ORDER BY d.next_attempt_at, d.id
         LIMIT $1
         FOR UPDATE OF d SKIP LOCKED
       )
       UPDATE webhook_deliveries d SET lease_until = now() + $2 * interval '1 millisecond'
       FROM pick, webhooks w
       -- Re-checked on the row's newest version: a dispatcher that leased it since this statement began wins.
       WHERE d.id = pick.id AND w.id = d.webhook_id AND d.state = 'pending' AND (d.lease_until IS NULL OR d.lease_until < now())
       RETURNING d.id, d.webhook_id, d.agent_id, d.event, d.message_id, d.body, d.attempts, w.url, w.secret_enc, pick.probing,
         (d.message_id IS NOT NULL AND EXISTS (SELECT 1 FROM messages m WHERE m.id = d.message_id AND m.expires_at <= now())) AS expired`,
      [limit, this.leaseMs(), probes],
    )
  }

  private async deliver(r: Claimed): Promise<void> {
    const { config, database, log } = this.deps
    let body = r.body
    if (r.expired) {
      await database.raw.query(`UPDATE webhook_deliveries SET state = 'skipped', lease_until = NULL, delivered_at = now(), last_error = 'message expired' WHERE id = $1`, [r.id])
      return
    }
    if (body === null) {
      // message.new: the public message as the socket carries it, fixed at the first attempt.
      const data = r.message_id ? await this.deps.buildMessage(r.message_id, r.agent_id) : null
      if (data === null) {
        await database.raw.query(`UPDATE webhook_deliveries SET state = 'skipped', lease_until = NULL, delivered_at = now(), last_error = 'message no longer visible' WHERE id = $1`, [r.id])
        return
      }
      // The first body written is kept (a dispatcher whose lease ran out may have built one already).
      const [kept] = await database.raw.query<{ body: string }>(`UPDATE webhook_deliveries SET body = coalesce(body, $2) WHERE id = $1 RETURNING body`, [
        r.id,
        envelope('message.new', data),
      ])
      body = kept!.body
    }
    const outcome = await this.post(r, body)
    if (outcome.ok) {
      await database.raw.query(
        `WITH d AS (
           UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at = now(), lease_until = NULL, last_status = $2, last_error = NULL
           WHERE id = $1 AND state = 'pending' RETURNING webhook_id)
         UPDATE webhooks w SET consecutive_failures = 0, breaker_state = 'closed', breaker_opened_at = NULL, probe_started_at = NULL
         FROM d WHERE w.id = d.webhook_id AND (w.consecutive_failures <> 0 OR w.breaker_state <> 'closed')`,
        [r.id, outcome.status],
      )
      if (r.event === 'message.new' && r.message_id) this.deps.onMessageDelivered(r.agent_id, r.message_id)
      return
    }
    const attempt = r.attempts + 1
    const schedule = config.webhookRetryScheduleMs
    // The breaker trips on a failed probe, the 5th consecutive failure, or the 10th within 60 s.
    const breaker = `, trip AS (
         SELECT w.id, w.breaker_state = 'probing' OR w.consecutive_failures + 1 >= 5
           OR (SELECT count(*) FROM unnest(w.recent_failures) t WHERE t > now() - interval '60 seconds') + 1 >= 10 AS open
         FROM webhooks w JOIN d ON w.id = d.webhook_id)
       UPDATE webhooks w SET
         consecutive_failures = w.consecutive_failures + 1,
         recent_failures = ARRAY(SELECT t FROM unnest(w.recent_failures) t WHERE t > now() - interval '60 seconds' ORDER BY t DESC LIMIT 9) || now(),
         breaker_state = CASE WHEN trip.open THEN 'open' ELSE w.breaker_state END,
         breaker_opened_at = CASE WHEN trip.open THEN now() ELSE w.breaker_opened_at END
       FROM trip WHERE w.id = trip.id
       RETURNING w.breaker_state, w.consecutive_failures`
    if (attempt > schedule.length) {
      // Every attempt of the schedule used: the dead-letter table (operator replay only).
      const rows = await database.raw.query<{ breaker_state: string }>(
        `WITH d AS (
           DELETE FROM webhook_deliveries WHERE id = $1 AND state = 'pending'
           RETURNING id, webhook_id, agent_id, event, message_id, body, created_at),
         dl AS (
           INSERT INTO webhook_dead_letters (id, webhook_id, agent_id, event, message_id, body, attempts, last_status, last_error, created_at)
           SELECT id, webhook_id, agent_id, event, message_id, body, $2, $3, $4, created_at FROM d
           ON CONFLICT (id) DO NOTHING)
         ${breaker}`,
        [r.id, attempt, outcome.status, outcome.error],
      )
      log.warn({ delivery: r.id, webhook: r.webhook_id, event: r.event, attempts: attempt, status: outcome.status, error: outcome.error }, 'webhook delivery dead-lettered')
      this.noteBreaker(r, rows[0]?.breaker_state)
      return
    }
    const rows = await database.raw.query<{ breaker_state: string }>(
      `WITH d AS (
         UPDATE webhook_deliveries SET attempts = $2, lease_until = NULL, last_status = $3, last_error = $4,
           next_attempt_at = now() + $5 * interval '1 millisecond'
         WHERE id = $1 AND state = 'pending' RETURNING webhook_id)
       ${breaker}`,
      [r.id, attempt, outcome.status, outcome.error, schedule[attempt - 1]!],
    )
    this.noteBreaker(r, rows[0]?.breaker_state)
  }

  private noteBreaker(r: Claimed, state: string | undefined) {
    if (state === 'open') this.deps.log.warn({ webhook: r.webhook_id, probe: r.probing }, 'webhook circuit breaker open')
  }

  /** One POST: the target re-checked after DNS resolution and pinned to the checked address. */
  private async post(r: Claimed, body: string): Promise<{ ok: true; status: number } | { ok: false; status: number | null; error: string }> {
    const { config, box } = this.deps
    const verdict = await checkTarget(r.url, config.webhookAllowPrivate)
    if (!verdict.ok) return { ok: false, status: null, error: verdict.rule }
    const secret = box.open(r.secret_enc)
    const t = Math.floor(Date.now() / 1000)
    const hex = (s: string) => createHmac('sha256', secret).update(s, 'utf8').digest('hex')
    const target = verdict.url
    const pinned = new URL(target.href)
    pinned.hostname = verdict.family === 6 ? `[${verdict.address}]` : verdict.address
    try {
      const res = await fetch(pinned, {
        method: 'POST',
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(config.webhookTimeoutMs),
        headers: {
          host: target.host,
          'content-type': 'application/json',
          'user-agent': 'AgentChat-Webhooks/1',
          'x-agentchat-event': r.event,
          'x-agentchat-delivery': r.id,
          'x-agentchat-signature': hex(body),
          'agentchat-signature': `t=${t},v1=${hex(`${t}.${body}`)}`,
        },
        tls: { serverName: target.hostname },
      })
      await res.body?.cancel().catch(() => {})
      if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status }
      return { ok: false, status: res.status, error: `HTTP ${res.status}` }
    } catch (err) {
      const e = err as Error
      return { ok: false, status: null, error: e.name === 'TimeoutError' ? `no answer within ${config.webhookTimeoutMs} ms` : e.message.slice(0, 200) }
    }
  }

  /** Delivered rows are kept a day (dedupe of late duplicates), then removed; stats for health. */
  private async housekeeping() {
    const now = Date.now()
    const q = this.deps.database.raw
    if (now - this.lastPurge > 60_000) {
      this.lastPurge = now
      await q.query(`DELETE FROM webhook_deliveries WHERE state <> 'pending' AND delivered_at < now() - $1 * interval '1 millisecond'`, [RETENTION_MS])
    }
    if (now - this.lastStats > 5_000) {
      this.lastStats = now
      await this.refreshStats()
    }
  }

  async refreshStats(): Promise<WebhookStats> {
    const [s] = await this.deps.database.raw.query<{ pending: number; dead: number; open: number }>(
      `SELECT (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending')::int AS pending,
              (SELECT count(*) FROM webhook_dead_letters)::int AS dead,
              (SELECT count(*) FROM webhooks WHERE active AND breaker_state <> 'closed')::int AS open`,
    )
    this.stats = { pending: s?.pending ?? 0, dead_letters: s?.dead ?? 0, open_breakers: s?.open ?? 0 }
    if (this.stats.pending > 10_000) this.deps.log.warn(this.stats, 'webhook outbox backlog')
    return this.stats
  }
}
