import type { RedisClient as Redis } from './lib/redis.ts'
import type { Bus } from './bus/bus.ts'
import type { Config } from './config.ts'
import type { Database, Db } from './db/client.ts'
import type { AckWriter } from './delivery/ack-writer.ts'
import type { WebhookDispatcher } from './delivery/webhooks/dispatcher.ts'
import type { SecretBox } from './lib/secret-box.ts'
import type { ObjectStorage } from './storage/storage.ts'
import type { IdempotencyStore } from './http/idempotency-store.ts'
import type { Logger } from './lib/log.ts'
import type { Backlog } from './limits/backlog.ts'
import type { Counters } from './limits/counters.ts'
import type { LoopDamper } from './limits/loop-damping.ts'
import type { Provenance } from './modules/messages/provenance.ts'
import type { WakeDigests } from './modules/messages/wake-digest.ts'
import type { SendRate } from './limits/send-rate.ts'
import type { Mailer } from './mail/mailer.ts'
import type { AgentStore } from './modules/agents/store.ts'
import type { Relations } from './modules/contacts/relations.ts'
import type { DirectConversations } from './modules/conversations/direct-cache.ts'
import type { Conversations } from './modules/conversations/service.ts'
import type { Enforcement } from './modules/enforcement/service.ts'
import type { GroupStore } from './modules/groups/store.ts'
import type { MessageWriter } from './modules/messages/writer.ts'
import type { MuteCache } from './modules/mutes/cache.ts'
import type { Presence } from './modules/presence/service.ts'
import type { Push } from './realtime/push.ts'
import type { Realtime } from './realtime/hub.ts'
import type { DashboardHub } from './realtime/dashboard.ts'
import type { LongPolls } from './realtime/longpoll.ts'
import type { AnnouncementFanout } from './modules/admin/fanout.ts'
import type { ExpirySweeper } from './delivery/expiry.ts'
import type { Metrics } from './metrics/metrics.ts'

/** Everything a route or service may use, built once per worker in `boot.ts`. */
export interface AppContext {
  config: Config
  log: Logger
  /** Identifies this process on the bus. */
  origin: string
  database: Database
  db: Db
  redis: Redis | undefined
  /** Fail-fast connection for the per-agent limit scripts. */
  limitsRedis: Redis | undefined
  counters: Counters
  bus: Bus
  mailer: Mailer
  agents: AgentStore
  enforcement: Enforcement
  idempotency: IdempotencyStore
  relations: Relations
  /** Per-recipient provenance and the untrusted-text wrapper of delivered messages (issue 16). */
  provenance: Provenance
  directs: DirectConversations
  conversations: Conversations
  groups: GroupStore
  mutes: MuteCache
  sendRate: SendRate
  /** Turns between the same two agents per conversation (issue 16's loop damping). */
  loops: LoopDamper
  backlog: Backlog
  writer: MessageWriter
  acks: AckWriter
  realtime: Realtime
  push: Push
  /** Long-polls (`GET /v1/messages/stream`) waiting on this worker, and what wakes them. */
  longPolls: LongPolls
  presence: Presence
  /** Owners' dashboard sockets and the agents they watch. */
  dashboard: DashboardHub
  /** Works unfinished operator announcements, a batch at a time (every worker; leases decide who). */
  announcements: AnnouncementFanout
  /** Sends wake.digest when an agent's quiet hours end (every worker; one row per window decides who). */
  wakeDigests: WakeDigests
  /** Expires messages past their TTL and tells their senders (every worker; row locks decide who). */
  expiry: ExpirySweeper
  /** Encrypts stored webhook signing secrets. */
  secrets: SecretBox
  /** Uploads and avatars: files under DATA_DIR, or S3 when configured. */
  storage: ObjectStorage
  /** Works the webhook outbox (every worker runs one; they share rows through Postgres). */
  webhooks: WebhookDispatcher
  /** This worker's Prometheus registry and the counters the hot paths move (src/metrics/). */
  metrics: Metrics
}
