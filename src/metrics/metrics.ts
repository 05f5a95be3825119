import { Gauge, Histogram, Registry } from 'prom-client'
import type { ErrorCode } from '../http/errors.ts'
import { LabelledCounter } from './counters.ts'
import { BACKLOG_BOUNDS, type DbGauges } from './db-gauges.ts'
import { EventLoopLag } from './event-loop.ts'
import { RouteHistogram } from './route-histogram.ts'

export type SendKind = 'direct' | 'group'
export type DeliveryPath = 'socket' | 'sync' | 'webhook'
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>

export interface Exposition {
  contentType: string
  body: string
}

const P = 'agentchat_'
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'])

/**
 * This worker thread's metrics: its own prom-client Registry (never the global default, so
 * in-process test servers and worker threads never share one), and the methods the hot paths call.
 * Each of those is a number added to a Map entry or an array slot; label work and text happen
 * only at scrape.
 */
export class Metrics {
  readonly registry = new Registry()
  private readonly accepted: LabelledCounter<SendKind>
  private readonly refused: LabelledCounter<ErrorCode>
  private readonly deliveries: LabelledCounter<DeliveryPath>
  private readonly batch: Histogram
  private readonly flush: Histogram
  private readonly http: RouteHistogram
  private readonly lag: EventLoopLag
  /** Set in a sharded worker: the scrape is answered by the main thread for every worker. */
  private remote: (() => Promise<Exposition>) | undefined

  constructor() {
    const r = this.registry
    this.accepted = new LabelledCounter(r, `${P}sends_accepted_total`, 'Messages accepted by POST /v1/messages (201; a replay of a client_msg_id, 200, is not counted), by kind.', 'kind', ['direct', 'group'])
    this.refused = new LabelledCounter(r, `${P}sends_refused_total`, 'POST /v1/messages answered with an error, by the code of the flat envelope.', 'code')
    this.deliveries = new LabelledCounter(
      r,
      `${P}deliveries_total`,
      'Messages handed to recipients, by path: socket = message.new frames written to a WebSocket (live or backlog drain), sync = envelopes returned by GET /v1/messages/sync (non-destructive: a page read twice counts twice), webhook = message.new webhook deliveries answered 2xx.',
      'path',
      ['socket', 'sync', 'webhook'],
    )
    this.batch = new Histogram({
      name: `${P}writer_batch_size`,
      help: 'Messages per group-commit flush of the message writer.',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [r],
    })
    this.flush = new Histogram({
      name: `${P}writer_flush_seconds`,
      help: 'Duration of one group-commit flush of the message writer (its statement, retries and isolation included), in seconds.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    })
    this.http = new RouteHistogram(
      r,
      `${P}http_request_duration_seconds`,
      'HTTP request duration, by route template (unmatched: no route, or answered before routing), method and status, in seconds.',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    )
    this.lag = new EventLoopLag(r, `${P}event_loop_lag_seconds`)
    this.lag.start()
  }

  sendAccepted(kind: SendKind): void {
    this.accepted.inc(kind)
  }

  sendRefused(code: ErrorCode): void {
    this.refused.inc(code)
  }

  delivered(path: DeliveryPath, n = 1): void {
    if (n > 0) this.deliveries.inc(path, n)
  }

  writerFlushed(size: number, seconds: number): void {
    this.batch.observe(size)
    this.flush.observe(seconds)
  }

  httpRequest(method: string, route: string | undefined, status: number, seconds: number): void {
    // Only known methods and route templates become label values: a client cannot mint series.
    this.http.observe(route ?? 'unmatched', METHODS.has(method) ? method : 'OTHER', status, seconds)
  }

  /**
   * Gauges computed at scrape from this worker's state and from Postgres. The database gauges
   * describe the whole deployment, so across worker threads they are aggregated with `first`
   * (every worker reads the same tables), never summed.
   */
  watch(sources: { openSockets(): number; db: DbGauges }): void {
    const r = this.registry
    new Gauge({
      name: `${P}websockets_open`,
      help: 'Authenticated WebSockets open (summed over worker threads).',
      registers: [r],
      collect() {
        this.set(sources.openSockets())
      },
    })
    const db = sources.db
    new Gauge({
      name: `${P}agents_backlog`,
      help: 'Live agents whose undelivered (stored) backlog is at most `le` messages (cumulative, like histogram buckets; +Inf is every live agent). From Postgres, at most 10 s old.',
      labelNames: ['le'],
      aggregator: 'first',
      registers: [r],
      async collect() {
        const s = await db.current()
        if (!s) return
        BACKLOG_BOUNDS.forEach((b, i) => this.set({ le: String(b) }, s.backlog.le[i]!))
        this.set({ le: '+Inf' }, s.backlog.agents)
      },
    })
    const outbox = (name: string, help: string, pick: (s: NonNullable<Awaited<ReturnType<DbGauges['current']>>>) => number) =>
      new Gauge({
        name: `${P}${name}`,
        help: `${help} From Postgres, at most 10 s old.`,
        aggregator: 'first',
        registers: [r],
        async collect() {
          const s = await db.current()
          if (s) this.set(pick(s))
        },
      })
    outbox('webhook_outbox_pending', 'Webhook deliveries waiting in the outbox (webhook_deliveries in state pending).', (s) => s.webhooks.pending)
    outbox('webhook_dead_letters', 'Webhook deliveries that used every retry (rows of webhook_dead_letters).', (s) => s.webhooks.dead_letters)
    outbox('webhook_open_breakers', 'Active webhooks whose circuit breaker is open or probing.', (s) => s.webhooks.open_breakers)
  }

  /** In a sharded worker: scrapes ask the main thread, which aggregates every worker's snapshot. */
  scrapeVia(remote: () => Promise<Exposition>): void {
    this.remote = remote
  }

  /** This worker's metrics as prom-client JSON (what the main thread aggregates). */
  snapshot(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON()
  }

  /** The text a scrape answers: this worker's registry, or the whole process's when sharded. */
  async scrape(): Promise<Exposition> {
    if (this.remote) return this.remote()
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }

  stop(): void {
    this.lag.stop()
  }
}
