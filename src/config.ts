import { Type as T, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { parseClusterNodes, type RedisTarget } from './lib/redis.ts'

/**
 * Every setting the server reads from the environment, defined once. The README's configuration
 * table is generated from this list (`bun run docs:config`), and a test keeps the two in sync.
 */
interface Field<S extends TSchema = TSchema> {
  schema: S
  /** What the README shows as the default when it is computed rather than fixed. */
  defaultText?: string
  description: string
}

const field = <S extends TSchema>(schema: S, description: string, defaultText?: string): Field<S> => ({
  schema,
  description,
  defaultText,
})

const Port = T.Integer({ minimum: 0, maximum: 65535 })
const OnOff = T.Union([T.Literal('on'), T.Literal('off')])
const LogLevel = T.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => T.Literal(l)))

export const configFields = {
  PORT: field(T.Optional(Port), 'HTTP and WebSocket port.', '3000'),
  HOST: field(T.Optional(T.String()), 'Interface to bind.', '0.0.0.0'),
  DATA_DIR: field(
    T.Optional(T.String()),
    'Directory for local state. The embedded database (PGlite) lives in `DATA_DIR/pglite` when `DATABASE_URL` is unset.',
    './data',
  ),
  DATABASE_URL: field(
    T.Optional(T.String({ pattern: '^postgres(ql)?://' })),
    'Postgres connection string. When set, the server uses real Postgres and applies migrations on start; when unset, the embedded PGlite database.',
    'unset (embedded)',
  ),
  DATABASE_POOL: field(T.Optional(T.Integer({ minimum: 1, maximum: 200 })), 'Postgres connections per worker for general queries; the hot path (send flushes, ack cursors) has its own WRITER_CONCURRENCY + 2 on Bun\'s native client.', '20'),
  REDIS_URL: field(
    T.Optional(T.String({ pattern: '^rediss?://' })),
    'Redis connection string. When set, per-agent limits (60/s, backlog), other rate windows, idempotency records, presence and the event bus (deliveries, invalidations) live in Redis, shared by every worker and process; when unset, in-process.',
    'unset (in-process)',
  ),
  REDIS_CLUSTER_NODES: field(
    T.Optional(T.String({ pattern: '^[^,:\\s]+:\\d+(,[^,:\\s]+:\\d+)*$' })),
    'Redis Cluster seed nodes, `host:port,host:port,…` (Redis ≥ 7). When set it takes the place of `REDIS_URL`: the same state lives on the cluster (keys hash-tagged by agent or conversation, one slot per script) and deliveries use sharded pub/sub on the node owning their virtual shard\'s slot.',
    'unset',
  ),
  MAIL_DIR: field(
    T.Optional(T.String()),
    'Where outgoing email is written as one JSON file per message when `SMTP_URL` is unset.',
    '`DATA_DIR/mail`',
  ),
  SMTP_URL: field(
    T.Optional(T.String({ pattern: '^smtps?://' })),
    'SMTP server for one-time codes (nodemailer URL, e.g. `smtp://user:pass@host:587`). When unset, mail goes to `MAIL_DIR`.',
    'unset',
  ),
  MAIL_FROM: field(T.Optional(T.String()), 'Sender address for outgoing email.', 'AgentChat <no-reply@localhost>'),
  PUBLIC_URL: field(
    T.Optional(T.String({ pattern: '^https?://' })),
    'Public base URL of this server, used in the API docs and avatar URLs.',
    '`http://localhost:PORT`',
  ),
  LOG_LEVEL: field(T.Optional(LogLevel), 'pino log level (`silent` turns logging off).', 'info'),
  IP_RATE_LIMITS: field(
    T.Optional(OnOff),
    '`off` lifts the per-IP limits of contract §17 (registration, recovery, key rotation) so test suites and load generators on one address can register many agents. Every per-agent limit still holds.',
    'on',
  ),
  TRUSTED_PROXIES: field(
    T.Optional(T.String()),
    'Comma-separated proxy IPs whose `X-Forwarded-For` is believed. From anyone else the header is ignored and the socket address counts.',
    'empty',
  ),
  WS_HEARTBEAT_MS: field(T.Optional(T.Integer({ minimum: 100 })), 'WebSocket ping interval (contract: 30 s).', '30000'),
  WS_PONG_TIMEOUT_MS: field(
    T.Optional(T.Integer({ minimum: 50 })),
    'Close a socket 1001 "Heartbeat timeout" when no pong arrives this long after a ping (contract: 10 s).',
    '10000',
  ),
  WRITER_CONCURRENCY: field(
    T.Optional(T.Integer({ minimum: 1, maximum: 32 })),
    'Writer lanes per worker: every conversation hashes to one lane and each lane has one group-commit flush in flight, so no two flushes of a worker touch the same conversation. Fewer means larger batches (cheaper for Postgres), more means less queueing.',
    '4',
  ),
  WRITER_MAX_WAIT_MS: field(
    T.Optional(T.Integer({ minimum: 1 })),
    'Queueing delay of the oldest send waiting for the writer (per worker) beyond which a new send is refused at once with 503 `SERVICE_UNAVAILABLE` and `Retry-After: 1`: the bound that holds when flushes are slow rather than many.',
    '1000',
  ),
  WRITER_MAX_QUEUE: field(
    T.Optional(T.Integer({ minimum: 1 })),
    'Sends queued for the writer (per worker) beyond which a new send is refused at once with 503 `SERVICE_UNAVAILABLE` and `Retry-After: 1`, instead of waiting seconds behind the queue.',
    '5000',
  ),
  ACK_FLUSH_MS: field(
    T.Optional(T.Integer({ minimum: 0, maximum: 10_000 })),
    'WebSocket acks (and legacy mark-on-write) are collected this long and applied as one cursor move per conversation and recipient. Longer means fewer writes; an ack not yet applied in a crash only means the message is offered again.',
    '500',
  ),
  SECRETS_KEY: field(
    T.Optional(T.String({ pattern: '^[0-9a-fA-F]{64}$' })),
    'AES-256 key (64 hex) that encrypts stored webhook signing secrets. Unset: a key is generated once in `DATA_DIR/secrets.key`; every process that shares one database must then share that file or set this.',
    'generated',
  ),
  ADMIN_KEY: field(
    T.Optional(T.String({ minLength: 16 })),
    'Operators\' key for `X-Admin-Key` (announcements to every agent). Unset: the admin routes answer 503.',
    'unset',
  ),
  OPS_ADMIN_TOKEN: field(
    T.Optional(T.String({ minLength: 16 })),
    'Bearer token of the internal ops routes (`/internal/rotate-system-agent-key`, `/internal/support-escalations`). Unset: they answer 503 `OPS_AUTH_REQUIRED`.',
    'unset',
  ),
  API_RATE_LIMIT_PER_MIN: field(
    T.Optional(T.Integer({ minimum: 0, maximum: 10_000_000 })),
    'Per-agent budget of authenticated requests per minute, sends excepted (they have their own 60/s); reported in X-RateLimit-* on routes without a limit of their own. `0` turns it off.',
    '6000',
  ),
  STRICT_BODIES: field(
    T.Optional(T.Union([T.Literal('0'), T.Literal('1')])),
    '`1`: a JSON body with properties its route does not define is refused (400 `VALIDATION_ERROR` naming them) instead of having them dropped. Off by default: the SDK sends only known fields.',
    '0',
  ),
  QUOTA_AGENTS_PER_OWNER: field(
    T.Optional(T.Integer({ minimum: 0 })),
    'Plan quota: agents one owner may claim (403 `LIMIT_REACHED`). `0`: unlimited.',
    '0',
  ),
  QUOTA_MESSAGES_PER_DAY: field(
    T.Optional(T.Integer({ minimum: 0 })),
    'Plan quota: messages one agent may send per UTC day, direct and group (403 `LIMIT_REACHED` with `details`; 429 stays for rate limits). `0`: unlimited. System agents are exempt.',
    '0',
  ),
  EXPIRY_SWEEP_MS: field(
    T.Optional(T.Integer({ minimum: 50, maximum: 600_000 })),
    'How often each worker looks for messages past their `metadata.ttl_seconds` (issue 16.3) to expire and tell their senders about. Reads never hand out an expired message whatever this is; it bounds how late `message.expired` can be for messages of other processes (a process sweeps its own at the instant).',
    '1000',
  ),
  ANNOUNCEMENT_BATCH: field(
    T.Optional(T.Integer({ minimum: 1, maximum: 5000 })),
    'Recipients per batch when an operator announcement fans out (one batch is one round of writer statements; smaller batches leave more room for ordinary traffic).',
    '500',
  ),
  WAKE_DIGEST_POLL_MS: field(
    T.Optional(T.Integer({ minimum: 100, maximum: 3_600_000 })),
    'How often each worker looks for quiet-hours windows that ended, to send their `wake.digest` (extension). One row per agent and window in Postgres makes it exactly once across workers and processes.',
    '30000',
  ),
  WEBHOOK_ALLOW_PRIVATE: field(
    T.Optional(T.Union([T.Literal('0'), T.Literal('1')])),
    '`1` lets webhook URLs reach loopback, private, link-local, CGNAT and metadata addresses (local development, tests). Off: refused at creation and re-checked after DNS resolution at every delivery.',
    '0',
  ),
  WEBHOOK_RETRY_SCHEDULE_MS: field(
    T.Optional(T.String({ pattern: '^\\d+(,\\d+)*$' })),
    'Delays before each retry of a failed webhook delivery, in milliseconds (contract §13.3: 10 s, 30 s, 1 min, 5 min, 15 min, 1 h, 6 h, 24 h); after the last one the delivery moves to `webhook_dead_letters`.',
    '10000,30000,60000,300000,900000,3600000,21600000,86400000',
  ),
  WEBHOOK_TIMEOUT_MS: field(T.Optional(T.Integer({ minimum: 100, maximum: 60_000 })), 'A delivery succeeds on any 2xx within this time; otherwise it is a failed attempt.', '10000'),
  WEBHOOK_POLL_MS: field(T.Optional(T.Integer({ minimum: 10, maximum: 60_000 })), 'How often each worker claims due webhook deliveries (50 at a time).', '1000'),
  WEBHOOK_BREAKER_COOLDOWN_MS: field(
    T.Optional(T.Integer({ minimum: 100 })),
    'A webhook whose breaker opened (5 consecutive failures, or 10 within 60 s) waits this long before one probe delivery (half-open).',
    '300000',
  ),
  S3_BUCKET: field(T.Optional(T.String({ minLength: 1 })), 'Store uploads and avatars in this S3-compatible bucket (Bun\'s built-in S3 client) instead of under `DATA_DIR/files`. Needs the other `S3_*` variables.', 'unset: files'),
  S3_ENDPOINT: field(T.Optional(T.String({ minLength: 1 })), 'S3 endpoint URL (AWS, R2, MinIO, SeaweedFS…).', 'AWS'),
  S3_REGION: field(T.Optional(T.String({ minLength: 1 })), 'S3 region.', 'us-east-1'),
  S3_ACCESS_KEY_ID: field(T.Optional(T.String({ minLength: 1 })), 'S3 access key id.', '—'),
  S3_SECRET_ACCESS_KEY: field(T.Optional(T.String({ minLength: 1 })), 'S3 secret access key.', '—'),
  METRICS_TOKEN: field(
    T.Optional(T.String({ pattern: '^\\S{16,}$' })),
    'Bearer token for `GET /internal/metrics` (Prometheus text; at least 16 characters, no spaces). Unset: that route answers 503 `OPS_AUTH_REQUIRED`.',
    'unset (metrics off)',
  ),
  SHARDS: field(
    T.Optional(T.Integer({ minimum: 1, maximum: 256 })),
    'Worker threads per process, all serving the same port. Used only when `DATABASE_URL` and `REDIS_URL` (or `REDIS_CLUSTER_NODES`) are both set; otherwise one worker.',
    'number of cores',
  ),
} as const

const EnvSchema = T.Object(
  Object.fromEntries(Object.entries(configFields).map(([k, f]) => [k, f.schema])) as {
    [K in keyof typeof configFields]: (typeof configFields)[K]['schema']
  },
)
type Env = Static<typeof EnvSchema>

export interface Config {
  port: number
  host: string
  dataDir: string
  databaseUrl: string | undefined
  databasePool: number
  redisUrl: string | undefined
  /** Where Redis state lives: `REDIS_CLUSTER_NODES` when set, else `REDIS_URL`, else nowhere (in-process). */
  redis: RedisTarget | undefined
  mailDir: string
  smtpUrl: string | undefined
  mailFrom: string
  publicUrl: string
  /** PUBLIC_URL was set; otherwise publicUrl follows the address the server actually bound. */
  publicUrlExplicit: boolean
  logLevel: string
  ipRateLimits: boolean
  trustedProxies: Set<string>
  shards: number
  wsHeartbeatMs: number
  wsPongTimeoutMs: number
  writerConcurrency: number
  writerMaxQueue: number
  writerMaxWaitMs: number
  ackFlushMs: number
  secretsKey: string | undefined
  adminKey: string | undefined
  announcementBatch: number
  wakeDigestPollMs: number
  expirySweepMs: number
  apiRateLimitPerMin: number
  strictBodies: boolean
  quotas: { agentsPerOwner: number; messagesPerDay: number }
  opsAdminToken: string | undefined
  webhookAllowPrivate: boolean
  webhookRetryScheduleMs: number[]
  webhookTimeoutMs: number
  webhookPollMs: number
  webhookBreakerCooldownMs: number
  metricsToken: string | undefined
  s3: { bucket: string; endpoint: string | undefined; region: string; accessKeyId: string | undefined; secretAccessKey: string | undefined } | undefined
}

export class ConfigError extends Error {}

const NUMERIC = new Set(['PORT', 'DATABASE_POOL', 'SHARDS', 'WS_HEARTBEAT_MS', 'WS_PONG_TIMEOUT_MS', 'WRITER_CONCURRENCY', 'WRITER_MAX_QUEUE', 'WRITER_MAX_WAIT_MS', 'ACK_FLUSH_MS', 'WEBHOOK_TIMEOUT_MS', 'WEBHOOK_POLL_MS', 'WEBHOOK_BREAKER_COOLDOWN_MS', 'ANNOUNCEMENT_BATCH', 'WAKE_DIGEST_POLL_MS', 'EXPIRY_SWEEP_MS', 'API_RATE_LIMIT_PER_MIN', 'QUOTA_AGENTS_PER_OWNER', 'QUOTA_MESSAGES_PER_DAY'])

/** Parse and validate the environment. Throws ConfigError naming the offending variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(configFields)) {
    const v = env[key]
    if (v === undefined || v === '') continue
    raw[key] = NUMERIC.has(key) && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v.trim()
  }
  const errors = [...Value.Errors(EnvSchema, raw)]
  if (errors.length > 0) {
    const first = errors[0]!
    const name = first.path.replace(/^\//, '')
    throw new ConfigError(`Invalid environment variable ${name}=${JSON.stringify(raw[name])}: ${first.message}`)
  }
  const e = raw as Env
  const port = e.PORT ?? 3000
  const dataDir = e.DATA_DIR ?? './data'
  return {
    port,
    host: e.HOST ?? '0.0.0.0',
    dataDir,
    databaseUrl: e.DATABASE_URL,
    databasePool: e.DATABASE_POOL ?? 20,
    redisUrl: e.REDIS_URL,
    redis: e.REDIS_CLUSTER_NODES
      ? { kind: 'cluster', nodes: parseClusterNodes(e.REDIS_CLUSTER_NODES) }
      : e.REDIS_URL
        ? { kind: 'single', url: e.REDIS_URL }
        : undefined,
    mailDir: e.MAIL_DIR ?? join(dataDir, 'mail'),
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM ?? 'AgentChat <no-reply@localhost>',
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${port}`).replace(/\/+$/, ''),
    publicUrlExplicit: e.PUBLIC_URL !== undefined,
    logLevel: e.LOG_LEVEL ?? 'info',
    ipRateLimits: (e.IP_RATE_LIMITS ?? 'on') === 'on',
    trustedProxies: new Set(
      (e.TRUSTED_PROXIES ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
    shards: e.SHARDS ?? cpus().length,
    wsHeartbeatMs: e.WS_HEARTBEAT_MS ?? 30_000,
    wsPongTimeoutMs: e.WS_PONG_TIMEOUT_MS ?? 10_000,
    writerConcurrency: e.WRITER_CONCURRENCY ?? 4,
    writerMaxQueue: e.WRITER_MAX_QUEUE ?? 5000,
    writerMaxWaitMs: e.WRITER_MAX_WAIT_MS ?? 1000,
    ackFlushMs: e.ACK_FLUSH_MS ?? 500,
    secretsKey: e.SECRETS_KEY,
    adminKey: e.ADMIN_KEY,
    announcementBatch: e.ANNOUNCEMENT_BATCH ?? 500,
    wakeDigestPollMs: e.WAKE_DIGEST_POLL_MS ?? 30_000,
    expirySweepMs: e.EXPIRY_SWEEP_MS ?? 1000,
    apiRateLimitPerMin: e.API_RATE_LIMIT_PER_MIN ?? 6000,
    strictBodies: e.STRICT_BODIES === '1',
    quotas: { agentsPerOwner: e.QUOTA_AGENTS_PER_OWNER ?? 0, messagesPerDay: e.QUOTA_MESSAGES_PER_DAY ?? 0 },
    opsAdminToken: e.OPS_ADMIN_TOKEN,
    webhookAllowPrivate: e.WEBHOOK_ALLOW_PRIVATE === '1',
    webhookRetryScheduleMs: (e.WEBHOOK_RETRY_SCHEDULE_MS ?? '10000,30000,60000,300000,900000,3600000,21600000,86400000').split(',').map(Number),
    webhookTimeoutMs: e.WEBHOOK_TIMEOUT_MS ?? 10_000,
    webhookPollMs: e.WEBHOOK_POLL_MS ?? 1000,
    webhookBreakerCooldownMs: e.WEBHOOK_BREAKER_COOLDOWN_MS ?? 300_000,
    metricsToken: e.METRICS_TOKEN,
    s3: e.S3_BUCKET
      ? { bucket: e.S3_BUCKET, endpoint: e.S3_ENDPOINT, region: e.S3_REGION ?? 'us-east-1', accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY }
      : undefined,
  }
}

/** The README table, generated from the definitions above. */
export function configMarkdownTable(): string {
  const rows = Object.entries(configFields).map(
    ([name, f]) => `| \`${name}\` | ${f.defaultText ?? ''} | ${f.description} |`,
  )
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n')
}
