import type { Database } from '../db/client.ts'
import { backlogOver } from '../delivery/cursors.ts'
import type { WebhookStats } from '../delivery/webhooks/dispatcher.ts'
import type { Logger } from '../lib/log.ts'
import { BACKLOG } from '../limits/backlog.ts'

/** Backlog bucket bounds (`le`), up to the 10,000 cap where sends to an agent are refused. */
export const BACKLOG_BOUNDS = [0, 10, 100, 1000, BACKLOG.warnAt, BACKLOG.capAt] as const

export interface DbSnapshot {
  /** Live agents with at most `bound` stored messages, per bound of BACKLOG_BOUNDS, then +Inf (all). */
  backlog: { le: number[]; agents: number }
  webhooks: WebhookStats
}

const TTL_MS = 10_000
/** A scrape waits this long for a refresh, then answers with what it has (the main thread gives a worker 2 s). */
const WAIT_MS = 1_000
/** Postgres ends the backlog statement after this; the gauges keep their last values. */
const STATEMENT_TIMEOUT_MS = 5_000

/**
 * The gauges read from Postgres: facts about the whole deployment, not this worker. Refreshed at
 * most every 10 s and only when scraped, one refresh in flight at a time; a scrape never waits
 * more than a second for it (a slow refresh lands in the cache for the next scrape).
 */
export class DbGauges {
  private snapshot: DbSnapshot | undefined
  private refreshedAt = -Infinity
  private inflight: Promise<void> | undefined

  constructor(
    private readonly database: Database,
    private readonly webhooks: { refreshStats(): Promise<WebhookStats> },
    private readonly log: Logger,
  ) {}

  async current(): Promise<DbSnapshot | undefined> {
    if (performance.now() - this.refreshedAt < TTL_MS) return this.snapshot
    this.inflight ??= this.refresh().finally(() => (this.inflight = undefined))
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([this.inflight, new Promise((r) => (timer = setTimeout(r, WAIT_MS)))])
    clearTimeout(timer)
    return this.snapshot
  }

  private async refresh(): Promise<void> {
    try {
      const [backlog, webhooks] = await Promise.all([this.backlog(), this.webhooks.refreshStats()])
      const le = backlog.over.map((n) => backlog.agents - n)
      this.snapshot = { backlog: { le, agents: backlog.agents }, webhooks }
    } catch (err) {
      this.log.warn({ err: (err as Error)?.message }, 'metrics: database gauges not refreshed')
    } finally {
      // Also after a failure: a failing statement is retried at the next TTL, not at every scrape.
      this.refreshedAt = performance.now()
    }
  }

  private backlog() {
    // The window is the cap plus one: every bucket up to the cap is exact for a membership whose
    // gap holds no more than that many seqs.
    const run = (q: Database['raw']) => backlogOver(q, BACKLOG_BOUNDS, BACKLOG.capAt + 1)
    if (this.database.kind !== 'postgres') return run(this.database.raw)
    return this.database.transaction(async (q) => {
      await q.query(`SET LOCAL statement_timeout = ${STATEMENT_TIMEOUT_MS}`)
      return run(q)
    })
  }
}
