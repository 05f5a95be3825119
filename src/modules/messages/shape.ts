import { t } from 'elysia'
import type { AgentRecord } from '../agents/record.ts'
import type { AgentStore } from '../agents/store.ts'
import { ProvenanceSchema } from './provenance.ts'

/** A message row as the server holds it. */
export interface StoredMessage {
  id: string
  conversationId: string
  seq: number
  senderId: string
  clientMsgId: string
  type: string
  content: Record<string, unknown>
  metadata: Record<string, unknown>
  createdAt: Date
}

export interface ConversationFacts {
  type: 'direct' | 'group'
  groupName: string | null
  memberCount: number | null
}

export const DIRECT: ConversationFacts = { type: 'direct', groupName: null, memberCount: null }

const MENTION = /(?:^|[^A-Za-z0-9_@-])@([A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)/g

/** Lowercase bare handles mentioned in text, on word boundaries, in order of first appearance. */
export function mentions(text: unknown): string[] {
  if (typeof text !== 'string' || !text.includes('@')) return []
  const seen = new Set<string>()
  for (const m of text.matchAll(MENTION)) {
    const h = m[1]!.toLowerCase()
    if (h.length >= 3 && h.length <= 30) seen.add(h)
  }
  return [...seen]
}

/** The public wire shape (contract §5.5), with the server-authored `context` block. */
export async function publicMessage(agents: AgentStore, m: StoredMessage, conv: ConversationFacts, knownSender?: AgentRecord) {
  const sender = knownSender?.id === m.senderId ? knownSender : await agents.get(m.senderId)
  const handle = sender?.handle ?? 'unknown'
  return {
    id: m.id,
    conversation_id: m.conversationId,
    sender: handle,
    // AgentSend/Thenvoi's sender_name (issue 14): the display name, else the handle; from the
    // agent cache, so no query per message.
    sender_name: sender?.displayName || handle,
    client_msg_id: m.clientMsgId,
    seq: m.seq,
    type: m.type,
    content: m.content,
    metadata: m.metadata,
    created_at: m.createdAt.toISOString(),
    context: {
      sender: { handle, display_name: sender?.displayName ?? null, kind: (sender?.isSystem ? 'system' : 'agent') as 'system' | 'agent' },
      conversation: { type: conv.type, group_name: conv.groupName, member_count: conv.memberCount },
      mentions: mentions(m.content.text),
    },
  }
}

export type PublicMessage = Awaited<ReturnType<typeof publicMessage>>

/** A send's answer: the public message plus the fresh envelope's fields (and skipped group members). */
export interface SendOutcome {
  status: 200 | 201
  body: PublicMessage & { status: string; delivered_at: string | null; read_at: string | null; skipped_recipients?: string[] }
  headers: Record<string, string>
}

export function sendOutcome(pub: PublicMessage, status: 200 | 201): SendOutcome {
  return { status, body: { ...pub, status: 'stored', delivered_at: null, read_at: null }, headers: {} }
}

/** Parse a row of `messages` selected with the standard columns. */
export function rowToMessage(r: MessageRow): StoredMessage {
  return {
    id: r.id,
    conversationId: r.conversation_id,
    seq: Number(r.seq),
    senderId: r.sender_id,
    clientMsgId: r.client_msg_id,
    type: r.type,
    content: typeof r.content === 'string' ? JSON.parse(r.content) : r.content,
    metadata: typeof r.metadata === 'string' ? JSON.parse(r.metadata) : r.metadata,
    createdAt: r.created_at instanceof Date ? r.created_at : new Date(r.created_at),
  }
}

export interface MessageRow {
  id: string
  conversation_id: string
  seq: string | number
  sender_id: string
  client_msg_id: string
  type: string
  content: Record<string, unknown> | string
  metadata: Record<string, unknown> | string
  created_at: Date | string
}

export const MESSAGE_COLUMNS = 'm.id, m.conversation_id, m.seq, m.sender_id, m.client_msg_id, m.type, m.content, m.metadata, m.created_at'

const NullableString = t.Union([t.String(), t.Null()])

export const MessageContext = t.Object({
  sender: t.Object({ handle: t.String(), display_name: NullableString, kind: t.Union([t.Literal('agent'), t.Literal('system')]) }),
  conversation: t.Object({
    type: t.Union([t.Literal('direct'), t.Literal('group')]),
    group_name: NullableString,
    member_count: t.Union([t.Integer(), t.Null()]),
  }),
  mentions: t.Array(t.String()),
})

export const MessageSchema = t.Object(
  {
    id: t.String(),
    conversation_id: t.String(),
    sender: t.String(),
    sender_name: t.Optional(t.String({ description: "The sender's display name, else its handle (extension)" })),
    client_msg_id: t.String(),
    seq: t.Integer(),
    type: t.String(),
    content: t.Record(t.String(), t.Unknown()),
    metadata: t.Record(t.String(), t.Unknown()),
    created_at: t.String({ format: 'date-time' }),
    context: t.Optional(MessageContext),
    status: t.Optional(t.String({ description: '`stored`, `delivered` or `read`; `expired` (extension, issue 16.3) for a message sent with `metadata.ttl_seconds` that passed its expiry before reaching its recipient' })),
    delivered_at: t.Optional(NullableString),
    read_at: t.Optional(NullableString),
    delivery_id: t.Optional(NullableString),
    skipped_recipients: t.Optional(t.Array(t.String())),
    provenance: t.Optional(ProvenanceSchema),
  },
  { title: 'Message' },
)

export const STATUS_NAMES = ['stored', 'delivered', 'read'] as const
/** Every status a message can show (`expired`: issue 16.3, see delivery/expiry.ts). */
export const ALL_STATUSES = [...STATUS_NAMES, 'expired'] as const
