import type { RawSql } from '../../db/client.ts'
import { DIRECT, type ConversationFacts } from '../messages/shape.ts'

/**
 * Conversation-level facts the message paths need, whatever the conversation's type. Groups add
 * their name and size here (and the deleted-group gate) when that module is present.
 */
export class Conversations {
  constructor(private readonly sql: RawSql) {}

  async facts(_conversationId: string): Promise<ConversationFacts> {
    return DIRECT
  }

  /** The other active participants, or null when `me` is not an active participant. */
  async activeParticipants(conversationId: string, me: string): Promise<string[] | null> {
    const rows = await this.sql.query<{ agent_id: string }>(
      'SELECT agent_id FROM conversation_members WHERE conversation_id = $1 AND left_at IS NULL',
      [conversationId],
    )
    if (!rows.some((r) => r.agent_id === me)) return null
    return rows.filter((r) => r.agent_id !== me).map((r) => r.agent_id)
  }

  /** Former members of a deleted group get 410 here; nothing to check for direct conversations. */
  async gate(_conversationId: string, _agentId: string): Promise<void> {}
}
