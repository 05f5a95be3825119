import type { RawSql } from '../../db/client.ts'

/** A caller's standing in a conversation, with the conversation's own facts. */
export interface Membership {
  conversationId: string
  type: 'direct' | 'group'
  agentA: string | null
  agentB: string | null
  lastSeq: number
  lastMessageAt: Date | null
  createdAt: Date
  joinedSeq: number
  hiddenSeq: number | null
  role: string
  /** Still a participant (has not left, was not removed). */
  active: boolean
}

interface Row {
  id: string
  type: 'direct' | 'group'
  agent_a: string | null
  agent_b: string | null
  last_seq: string | number
  last_message_at: Date | string | null
  created_at: Date | string
  joined_seq: string | number
  hidden_seq: string | number | null
  role: string
  left_at: Date | string | null
}

/** The caller's membership row in a conversation (active or former), or null if they never were in it. */
export async function membership(sql: RawSql, conversationId: string, agentId: string): Promise<Membership | null> {
  const rows = await sql.query<Row>(
    `SELECT c.id, c.type, c.agent_a, c.agent_b, c.last_seq, c.last_message_at, c.created_at,
            m.joined_seq, m.hidden_seq, m.role, m.left_at
     FROM conversations c JOIN conversation_members m ON m.conversation_id = c.id AND m.agent_id = $2
     WHERE c.id = $1`,
    [conversationId, agentId],
  )
  const r = rows[0]
  if (!r) return null
  return {
    conversationId: r.id,
    type: r.type,
    agentA: r.agent_a,
    agentB: r.agent_b,
    lastSeq: Number(r.last_seq),
    lastMessageAt: r.last_message_at ? new Date(r.last_message_at) : null,
    createdAt: new Date(r.created_at),
    joinedSeq: Number(r.joined_seq),
    hiddenSeq: r.hidden_seq === null ? null : Number(r.hidden_seq),
    role: r.role,
    active: r.left_at === null,
  }
}

/** The other agent of a direct conversation. */
export const counterpartOf = (m: Pick<Membership, 'agentA' | 'agentB'>, me: string): string => (m.agentA === me ? m.agentB! : m.agentA!)
