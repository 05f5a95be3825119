import { sql } from 'drizzle-orm'
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgSequence,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core'

/*
 * Distribution-ready schema: every hot table is keyed by the column a distributed Postgres
 * (Citus) would shard it on — messages and their members' delivery cursors by conversation_id, contacts,
 * blocks and the rest by the owning agent — and nothing on the send/delivery path needs a
 * foreign key or a join across those keys. Foreign keys are therefore deliberately absent.
 */

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })

export const agents = pgTable(
  'agents',
  {
    id: text('id').primaryKey(),
    handle: text('handle').notNull(),
    email: text('email').notNull(),
    displayName: text('display_name'),
    description: text('description'),
    avatarKey: text('avatar_key'),
    /** active | restricted | suspended | deleted */
    status: text('status').notNull().default('active'),
    /** none | send | full */
    pausedByOwner: text('paused_by_owner').notNull().default('none'),
    /** Owner approval before send (issue 16.6): none | all | cold. Set by the owner only; cleared with the claim. */
    ownerApproval: text('owner_approval').notNull().default('none'),
    /** open | contacts_only */
    inboxMode: text('inbox_mode').notNull().default('open'),
    /** open | contacts_only */
    groupInvitePolicy: text('group_invite_policy').notNull().default('open'),
    apiKeyHash: text('api_key_hash'),
    isSystem: boolean('is_system').notNull().default(false),
    /** The opt-in safeguards of issue 16 (`settings.loop_damping`, …); absent keys take the defaults. */
    safety: jsonb('safety').$type<Record<string, unknown>>().notNull().default({}),
    /** Capability tags the agent declares for discovery (up to 32, lowercase). */
    capabilities: text('capabilities').array().notNull().default(sql`'{}'::text[]`),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    deletedAt: ts('deleted_at'),
  },
  (t) => [
    // Handles are permanent: unique across every row, deleted ones included.
    uniqueIndex('agents_handle_uq').on(t.handle),
    uniqueIndex('agents_api_key_hash_uq').on(t.apiKeyHash),
    // One live agent per email; deleted agents free their email.
    uniqueIndex('agents_live_email_uq').on(t.email).where(sql`status <> 'deleted'`),
    index('agents_email_idx').on(t.email),
    // Discovery by capability (issue 16): `capabilities && $tags` uses it.
    index('agents_capabilities_gin').using('gin', t.capabilities),
  ],
)

/** A pending one-time-code flow: registration, recovery or key rotation. */
export const pendingOtps = pgTable('pending_otps', {
  id: text('id').primaryKey(),
  /** register | recover | rotate */
  purpose: text('purpose').notNull(),
  email: text('email').notNull(),
  agentId: text('agent_id'),
  handle: text('handle'),
  displayName: text('display_name'),
  description: text('description'),
  codeHash: text('code_hash').notNull(),
  attempts: integer('attempts').notNull().default(0),
  burned: boolean('burned').notNull().default(false),
  expiresAt: ts('expires_at').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
})

/** Every code sent, per email: the 60 s cooldown and the 20/hour cap read this. */
export const otpSends = pgTable(
  'otp_sends',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    email: text('email').notNull(),
    sentAt: ts('sent_at').notNull().defaultNow(),
  },
  (t) => [index('otp_sends_email_idx').on(t.email, t.sentAt)],
)

export const contacts = pgTable(
  'contacts',
  {
    ownerId: text('owner_id').notNull(),
    contactId: text('contact_id').notNull(),
    notes: text('notes'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.ownerId, t.contactId] }), index('contacts_contact_idx').on(t.contactId)],
)

export const blocks = pgTable(
  'blocks',
  {
    blockerId: text('blocker_id').notNull(),
    blockedId: text('blocked_id').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.blockerId, t.blockedId] }), index('blocks_blocked_idx').on(t.blockedId, t.createdAt)],
)

export const reports = pgTable(
  'reports',
  {
    id: text('id').primaryKey(),
    reporterId: text('reporter_id').notNull(),
    targetId: text('target_id').notNull(),
    reason: text('reason'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('reports_pair_uq').on(t.reporterId, t.targetId),
    index('reports_target_idx').on(t.targetId, t.createdAt),
  ],
)

/** Stripe-style Idempotency-Key records when Redis is not configured (contract §1.7). */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    agentId: text('agent_id').notNull(),
    key: text('key').notNull(),
    fingerprint: text('fingerprint').notNull(),
    /** running | done */
    state: text('state').notNull(),
    statusCode: integer('status_code'),
    headers: jsonb('headers').$type<Record<string, string>>(),
    body: text('body'),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.agentId, t.key] }), index('idempotency_expires_idx').on(t.expiresAt)],
)

/**
 * A conversation: direct (two agents, `agent_a < agent_b`) or group. `last_seq` is the per-
 * conversation sequence counter, advanced inside the insert transaction.
 */
export const conversations = pgTable(
  'conversations',
  {
    id: text('id').primaryKey(),
    /** direct | group */
    type: text('type').notNull(),
    agentA: text('agent_a'),
    agentB: text('agent_b'),
    initiatorId: text('initiator_id'),
    established: boolean('established').notNull().default(false),
    establishedAt: ts('established_at'),
    lastSeq: bigint('last_seq', { mode: 'number' }).notNull().default(0),
    lastMessageAt: ts('last_message_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
    // Groups only.
    name: text('name'),
    description: text('description'),
    avatarUrl: text('avatar_url'),
    /** Set when the avatar was uploaded here (PUT /v1/groups/:id/avatar): the stored object behind avatar_url. */
    avatarKey: text('avatar_key'),
    createdBy: text('created_by'),
    deletedAt: ts('deleted_at'),
    deletedBy: text('deleted_by'),
  },
  (t) => [
    uniqueIndex('conversations_direct_pair_uq').on(t.agentA, t.agentB).where(sql`type = 'direct'`),
    index('conversations_cold_idx').on(t.initiatorId, t.createdAt).where(sql`type = 'direct' AND NOT established`),
  ],
)

/**
 * Participation: both agents of a direct conversation, every member of a group — and the
 * member's delivery state, as cursors: every message addressed to the member (sent by someone
 * else, at or after the join point) with `seq <= delivered_seq` is delivered, `<= read_seq` read.
 * A message costs one row; an ack moves a cursor (contiguously; out-of-order acks wait in memory,
 * see delivery/ack-writer.ts). Exceptions are rows of their own: messages read one by one
 * (`message_reads`), members skipped at the backlog cap (`delivery_skips`), hides (`message_hides`).
 */
export const conversationMembers = pgTable(
  'conversation_members',
  {
    conversationId: text('conversation_id').notNull(),
    agentId: text('agent_id').notNull(),
    /** member | admin (groups) */
    role: text('role').notNull().default('member'),
    /** First seq this member may see (groups: the join point; direct: 1). */
    joinedSeq: bigint('joined_seq', { mode: 'number' }).notNull().default(1),
    joinedAt: ts('joined_at').notNull().defaultNow(),
    leftAt: ts('left_at'),
    /** Conversation hidden by this member: messages up to `hidden_seq` stay masked. */
    hiddenSeq: bigint('hidden_seq', { mode: 'number' }),
    /** Delivered through this seq (effective cursor: the greater of this and `joined_seq - 1`). */
    deliveredSeq: bigint('delivered_seq', { mode: 'number' }).notNull().default(0),
    /** When the delivered cursor last advanced. */
    deliveredAt: ts('delivered_at'),
    /** Read through this seq (never behind `delivered_seq` in effect: reading implies delivery). */
    readSeq: bigint('read_seq', { mode: 'number' }).notNull().default(0),
    readAt: ts('read_at'),
    /**
     * Expiry (issue 16.3): the instant the expiry sweeper last decided for this member, written
     * under the member's row lock. A cursor statement that waited for that lock reads it from the
     * row's newest version, so it treats every message the sweeper expired as expired too, even
     * though its snapshot predates the sweeper's exception rows (delivery/expiry.ts).
     */
    expiryMark: ts('expiry_mark'),
  },
  (t) => [primaryKey({ columns: [t.conversationId, t.agentId] }), index('conversation_members_agent_idx').on(t.agentId)],
)

/**
 * A global, increasing position per message: sync's cursor (`del_` ids encode it) and the order
 * of a recipient's inbox across conversations. Within a conversation it rises with `seq` (both
 * are drawn in seq order while the conversation's row lock is held).
 */
export const messagePositions = pgSequence('messages_position_seq')

export const messages = pgTable(
  'messages',
  {
    id: text('id').primaryKey(),
    conversationId: text('conversation_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    senderId: text('sender_id').notNull(),
    clientMsgId: text('client_msg_id').notNull(),
    /** text | structured | file | system */
    type: text('type').notNull(),
    content: jsonb('content').notNull(),
    metadata: jsonb('metadata').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    position: bigint('position', { mode: 'number' }).notNull().default(sql`nextval('messages_position_seq')`),
    /** `created_at + metadata.ttl_seconds` (issue 16.3); null: the message never expires. */
    expiresAt: ts('expires_at'),
    /** When the expiry sweeper handled the message (claimed once, across processes). */
    expirySweptAt: ts('expiry_swept_at'),
    /** Set by the sweeper when at least one recipient had not received it: the sender sees `expired`. */
    expiredAt: ts('expired_at'),
  },
  (t) => [
    // The sweeper's queue: only messages with a TTL that are not handled yet.
    index('messages_expiry_due_idx').on(t.expiresAt).where(sql`expires_at IS NOT NULL AND expiry_swept_at IS NULL`),
    uniqueIndex('messages_conv_seq_uq').on(t.conversationId, t.seq),
    uniqueIndex('messages_sender_client_uq').on(t.conversationId, t.senderId, t.clientMsgId),
    // Threads (seed 001) are the messages carrying metadata.thread_id; only those are indexed.
    index('messages_thread_idx')
      .on(t.conversationId, sql`(${t.metadata}->>'thread_id')`, t.seq)
      .where(sql`(${t.metadata}->>'thread_id') IS NOT NULL`),
  ],
)

/** A message read on its own (POST /v1/messages/:id/read) ahead of the member's read cursor. */
export const messageReads = pgTable(
  'message_reads',
  {
    agentId: text('agent_id').notNull(),
    conversationId: text('conversation_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    readAt: ts('read_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.agentId, t.conversationId, t.seq] })],
)

/**
 * A message acknowledged ahead of the member's delivered cursor, kept once the gap below it has
 * stayed open for a while (delivery/ack-writer.ts holds such acks in memory first, since most
 * gaps close within a flush). Folded into the cursor and deleted when the cursor passes it.
 */
export const deliveryAcks = pgTable(
  'delivery_acks',
  {
    agentId: text('agent_id').notNull(),
    conversationId: text('conversation_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    deliveredAt: ts('delivered_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.agentId, t.conversationId, t.seq] })],
)

/** A group member skipped at the 10,000 backlog cap: the message is not theirs to receive. */
export const deliverySkips = pgTable(
  'delivery_skips',
  {
    agentId: text('agent_id').notNull(),
    conversationId: text('conversation_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    /** Expiry (issue 16.3): the message expired before reaching this member (else: skipped at the backlog cap). */
    expired: boolean('expired').notNull().default(false),
  },
  (t) => [primaryKey({ columns: [t.agentId, t.conversationId, t.seq] })],
)

/** Hide-for-me (contract §5.4). */
export const messageHides = pgTable(
  'message_hides',
  {
    agentId: text('agent_id').notNull(),
    messageId: text('message_id').notNull(),
    conversationId: text('conversation_id').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.agentId, t.messageId] })],
)

export const mutes = pgTable(
  'mutes',
  {
    muterAgentId: text('muter_agent_id').notNull(),
    /** agent | conversation */
    targetKind: text('target_kind').notNull(),
    targetId: text('target_id').notNull(),
    mutedUntil: ts('muted_until'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.muterAgentId, t.targetKind, t.targetId] })],
)

/** Pending group invites (consent-gated adds, contract §10.3); accepted or rejected invites are removed. */
export const groupInvites = pgTable(
  'group_invites',
  {
    id: text('id').primaryKey(),
    groupId: text('group_id').notNull(),
    inviteeId: text('invitee_id').notNull(),
    inviterId: text('inviter_id').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('group_invites_pair_uq').on(t.groupId, t.inviteeId), index('group_invites_invitee_idx').on(t.inviteeId, t.createdAt)],
)

/**
 * Webhooks (contract §13). The signing secret must be usable to sign, so it cannot be hashed: it
 * is stored encrypted (AES-256-GCM, `src/lib/secret-box.ts`). The circuit breaker lives on the
 * row so that every worker and process sees the same state.
 */
export const webhooks = pgTable(
  'webhooks',
  {
    id: text('id').primaryKey(),
    agentId: text('agent_id').notNull(),
    url: text('url').notNull(),
    events: text('events').array().notNull(),
    secretEnc: text('secret_enc').notNull(),
    active: boolean('active').notNull().default(true),
    createdAt: ts('created_at').notNull().defaultNow(),
    /** closed | open | probing */
    breakerState: text('breaker_state').notNull().default('closed'),
    breakerOpenedAt: ts('breaker_opened_at'),
    probeStartedAt: ts('probe_started_at'),
    consecutiveFailures: integer('consecutive_failures').notNull().default(0),
    /** Failures of the last 60 s (at most 10 kept): the "10 in 60 s" rule. */
    recentFailures: timestamp('recent_failures', { withTimezone: true, mode: 'date' }).array().notNull().default(sql`'{}'`),
  },
  (t) => [index('webhooks_agent_idx').on(t.agentId).where(sql`active`)],
)

/**
 * The durable outbox: one row per (event, webhook), inserted in the transaction (or statement) of
 * the change it reports, worked by every process with FOR UPDATE SKIP LOCKED. `body` is the exact
 * signed JSON; for `message.new` it is built at the first attempt from `message_id` and then kept,
 * so every retry carries the same bytes.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    webhookId: text('webhook_id').notNull(),
    agentId: text('agent_id').notNull(),
    event: text('event').notNull(),
    messageId: text('message_id'),
    body: text('body'),
    /** pending | delivered | skipped */
    state: text('state').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: ts('next_attempt_at').notNull().defaultNow(),
    leaseUntil: ts('lease_until'),
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    createdAt: ts('created_at').notNull().defaultNow(),
    deliveredAt: ts('delivered_at'),
  },
  (t) => [
    index('webhook_deliveries_due_idx').on(t.nextAttemptAt).where(sql`state = 'pending'`),
    index('webhook_deliveries_webhook_idx').on(t.webhookId, t.nextAttemptAt).where(sql`state = 'pending'`),
    index('webhook_deliveries_done_idx').on(t.deliveredAt).where(sql`state <> 'pending'`),
  ],
)

/** Deliveries that used every attempt of the schedule (operator replay only). */
export const webhookDeadLetters = pgTable(
  'webhook_dead_letters',
  {
    id: text('id').primaryKey(),
    webhookId: text('webhook_id').notNull(),
    agentId: text('agent_id').notNull(),
    event: text('event').notNull(),
    messageId: text('message_id'),
    body: text('body'),
    attempts: integer('attempts').notNull(),
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    createdAt: ts('created_at').notNull(),
    deadAt: ts('dead_at').notNull().defaultNow(),
  },
  (t) => [index('webhook_dead_letters_webhook_idx').on(t.webhookId)],
)

/**
 * Uploaded files (contract §14): scoped at creation to one recipient (direct) or one group, and
 * usable only by their uploader in that scope. `state` is `pending` until the PUT to the signed
 * upload URL delivered exactly `size` bytes hashing to `sha256`.
 */
export const attachments = pgTable(
  'attachments',
  {
    id: text('id').primaryKey(),
    uploaderId: text('uploader_id').notNull(),
    /** direct | group */
    scope: text('scope').notNull(),
    recipientId: text('recipient_id'),
    conversationId: text('conversation_id'),
    filename: text('filename').notNull(),
    contentType: text('content_type').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
    storageKey: text('storage_key').notNull(),
    /** pending | uploaded */
    state: text('state').notNull().default('pending'),
    createdAt: ts('created_at').notNull().defaultNow(),
    uploadedAt: ts('uploaded_at'),
  },
  (t) => [index('attachments_uploader_idx').on(t.uploaderId, t.createdAt)],
)

/** A person who owns agents (contract §15): signs in to the dashboard with an emailed code. */
export const owners = pgTable(
  'owners',
  {
    id: text('id').primaryKey(),
    email: text('email').notNull(),
    displayName: text('display_name'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('owners_email_uq').on(t.email)],
)

/**
 * One access + refresh token pair of an owner. Refreshing marks the row rotated and inserts the
 * next pair in the same family; a rotated refresh token presented again is a replay (the token
 * was stolen or copied) and revokes the whole family. Tokens are stored as SHA-256 hashes only.
 */
export const ownerSessions = pgTable(
  'owner_sessions',
  {
    id: text('id').primaryKey(),
    ownerId: text('owner_id').notNull(),
    familyId: text('family_id').notNull(),
    accessHash: text('access_hash').notNull(),
    refreshHash: text('refresh_hash').notNull(),
    accessExpiresAt: ts('access_expires_at').notNull(),
    refreshExpiresAt: ts('refresh_expires_at').notNull(),
    rotatedAt: ts('rotated_at'),
    revokedAt: ts('revoked_at'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('owner_sessions_access_uq').on(t.accessHash),
    uniqueIndex('owner_sessions_refresh_uq').on(t.refreshHash),
    index('owner_sessions_family_idx').on(t.familyId),
    index('owner_sessions_owner_idx').on(t.ownerId),
  ],
)

/** Which owner controls an agent: one owner per agent. */
export const ownerClaims = pgTable(
  'owner_claims',
  {
    agentId: text('agent_id').primaryKey(),
    ownerId: text('owner_id').notNull(),
    claimedAt: ts('claimed_at').notNull().defaultNow(),
  },
  (t) => [index('owner_claims_owner_idx').on(t.ownerId, t.claimedAt)],
)

/** One-shot dashboard socket tickets (30 s). In Postgres so any process can redeem them. */
export const dashboardTickets = pgTable('dashboard_tickets', {
  ticket: text('ticket').primaryKey(),
  ownerId: text('owner_id').notNull(),
  expiresAt: ts('expires_at').notNull(),
})

/**
 * The audit log (contract §15): what happened to an agent or an owner, by whom. Written in the
 * transaction of the change it describes.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: text('id').primaryKey(),
    agentId: text('agent_id'),
    ownerId: text('owner_id'),
    /** agent | owner | system | operator */
    actorType: text('actor_type').notNull(),
    action: text('action').notNull(),
    metadata: jsonb('metadata').notNull().default({}),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [index('audit_events_agent_idx').on(t.agentId, t.createdAt), index('audit_events_owner_idx').on(t.ownerId, t.createdAt)],
)

/** Cases for the operators (contract §16.4): opened by agents or the system, worked through the ops routes. */
export const supportEscalations = pgTable(
  'support_escalations',
  {
    id: text('id').primaryKey(),
    agentId: text('agent_id'),
    /** open | in_progress | resolved | dismissed */
    status: text('status').notNull().default('open'),
    subject: text('subject').notNull(),
    body: text('body'),
    resolutionNote: text('resolution_note'),
    resolvedBy: text('resolved_by'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('support_escalations_status_idx').on(t.status, t.createdAt),
    // One open case per agent, even when its messages to the system agent race.
    uniqueIndex('support_escalations_open_uq').on(t.agentId).where(sql`status IN ('open', 'in_progress')`),
  ],
)

/**
 * Operator announcements (seed 001), delivered to every agent as a direct message from the
 * system agent. Fan-out is lazy and batched: a worker holding the lease writes the next batch of
 * recipients (agents in id order after `fanout_after`) through the ordinary message writer, then
 * advances the cursor; any worker of any process resumes an abandoned fan-out after the lease.
 */
export const announcements = pgTable(
  'announcements',
  {
    id: text('id').primaryKey(),
    text: text('text').notNull(),
    data: jsonb('data'),
    createdAt: ts('created_at').notNull().defaultNow(),
    /** Agents created up to this instant receive it. */
    audienceBefore: ts('audience_before').notNull().defaultNow(),
    fanoutAfter: text('fanout_after').notNull().default(''),
    delivered: integer('delivered').notNull().default(0),
    fanoutDoneAt: ts('fanout_done_at'),
    leaseOwner: text('lease_owner'),
    leaseUntil: ts('lease_until'),
  },
  (t) => [index('announcements_pending_idx').on(t.createdAt).where(sql`fanout_done_at IS NULL`)],
)

/**
 * Permission contracts (seed 001): the levels at which `owner_id` accepts messages from
 * `contact_id`, per category. No row: the default preset (contracts/presets.ts).
 */
export const contactPermissions = pgTable(
  'contact_permissions',
  {
    ownerId: text('owner_id').notNull(),
    contactId: text('contact_id').notNull(),
    /** friends | coworkers | casual | custom */
    contract: text('contract').notNull(),
    info: text('info').notNull(),
    requests: text('requests').notNull(),
    personal: text('personal').notNull(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.ownerId, t.contactId] })],
)

/**
 * A message held for the recipient's approval (a category at level `ask`): the send as it was
 * asked for, written only when the recipient (or its owner) approves it.
 */
export const approvals = pgTable(
  'approvals',
  {
    id: text('id').primaryKey(),
    /**
     * contract: held for the RECIPIENT's approval (a category at level `ask`);
     * outgoing: held for the SENDER's owner's approval (issue 16.6; recipient_id is then the
     * recipient agent of a direct send or the group's conversation id).
     */
    kind: text('kind').notNull().default('contract'),
    senderId: text('sender_id').notNull(),
    recipientId: text('recipient_id').notNull(),
    clientMsgId: text('client_msg_id').notNull(),
    /** The category for `contract`; '' for `outgoing`. */
    category: text('category').notNull(),
    /** The send body: to, type, content, metadata. */
    request: jsonb('request').notNull(),
    /** pending | approving | approved | rejected */
    status: text('status').notNull().default('pending'),
    decidedBy: text('decided_by'),
    messageId: text('message_id'),
    createdAt: ts('created_at').notNull().defaultNow(),
    decidedAt: ts('decided_at'),
  },
  (t) => [
    // A retried send (same client_msg_id) is the same request, not a second one.
    // One of each kind: an owner-approved send may then be held again by the recipient's contract.
    uniqueIndex('approvals_request_kind_uq').on(t.kind, t.senderId, t.recipientId, t.clientMsgId),
    index('approvals_recipient_idx').on(t.recipientId, t.status, t.createdAt),
    // The owner's list of its agent's held sends.
    index('approvals_outgoing_idx').on(t.senderId, t.status, t.createdAt).where(sql`kind = 'outgoing'`),
  ],
)

/**
 * Connection invites (seed 001, Context Exchange): a one-time code an agent hands to another so
 * that, on accepting, the two become contacts with an established conversation and a permission
 * contract. Only the SHA-256 of the code is stored (like API keys): the code is shown once, in
 * the 201, and a copy of this table cannot be used to accept anyone's invite. `accepted_at` and
 * `revoked_at` are set at most once each, and never both (both require a pending invite).
 */
export const connectionInvites = pgTable(
  'connection_invites',
  {
    id: text('id').primaryKey(),
    codeHash: text('code_hash').notNull(),
    inviterId: text('inviter_id').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
    acceptedAt: ts('accepted_at'),
    acceptedBy: text('accepted_by'),
    /** The preset the accepting agent chose (friends | coworkers | casual). */
    contract: text('contract'),
    revokedAt: ts('revoked_at'),
  },
  (t) => [
    uniqueIndex('connection_invites_code_hash_uq').on(t.codeHash),
    index('connection_invites_pending_idx').on(t.inviterId, t.createdAt).where(sql`accepted_at IS NULL AND revoked_at IS NULL`),
  ],
)

/**
 * Consent contact requests (Thenvoi, seed 004): `from_id` asks `to_id` to become contacts; on
 * approval both contact rows are written in the transaction that marks it approved. At most one
 * pending request per direction and pair — the partial unique index decides concurrent duplicates.
 * A pending request past `expires_at` (30 days) is expired: hidden from lists, not approvable, and
 * turned `expired` before a new request for the same pair is inserted.
 */
export const contactRequests = pgTable(
  'contact_requests',
  {
    id: text('id').primaryKey(),
    fromId: text('from_id').notNull(),
    toId: text('to_id').notNull(),
    message: text('message'),
    /** pending | approved | rejected | cancelled | expired */
    status: text('status').notNull().default('pending'),
    createdAt: ts('created_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
    resolvedAt: ts('resolved_at'),
  },
  (t) => [
    uniqueIndex('contact_requests_pending_uq').on(t.fromId, t.toId).where(sql`status = 'pending'`),
    index('contact_requests_to_idx').on(t.toId, t.createdAt).where(sql`status = 'pending'`),
    index('contact_requests_from_idx').on(t.fromId, t.createdAt).where(sql`status = 'pending'`),
  ],
)

/**
 * Agent memories (Thenvoi, seed 004). `subject` scope: only the author reads it; `organization`
 * scope: also every agent claimed by the author's owner (owner_claims, evaluated at read time, so
 * a release or a new claim changes who sees it). Deleting supersedes (soft delete): the row stays,
 * nobody reads it.
 */
export const memories = pgTable(
  'memories',
  {
    id: text('id').primaryKey(),
    authorId: text('author_id').notNull(),
    content: text('content').notNull(),
    subject: text('subject'),
    /** subject | organization */
    scope: text('scope').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    supersededAt: ts('superseded_at'),
  },
  (t) => [index('memories_author_idx').on(t.authorId, t.createdAt).where(sql`superseded_at IS NULL`)],
)

/**
 * One row per agent per quiet-hours window that ended (issue 16's wake.digest): inserted by
 * whichever worker of whichever process sees the window end first, so the digest is sent once.
 */
export const wakeDigests = pgTable(
  'wake_digests',
  {
    agentId: text('agent_id').notNull(),
    windowEnd: ts('window_end').notNull(),
    windowStart: ts('window_start').notNull(),
    held: integer('held').notNull().default(0),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.agentId, t.windowEnd] })],
)
