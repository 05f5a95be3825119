import type { RawSql } from '../../db/client.ts'
import type { AgentStore } from '../agents/store.ts'
import { goneFor } from '../groups/gate.ts'
import { groupFacts, type GroupStore } from '../groups/store.ts'
import { DIRECT, type ConversationFacts } from '../messages/shape.ts'

/** Conversation-level facts the message paths need, whatever the conversation's type. */
export class Conversations {
  constructor(
    private readonly sql: RawSql,
    private readonly groups: GroupStore,
    private readonly agents: AgentStore,
  ) {}

  async facts(conversationId: string): Promise<ConversationFacts> {
    if (!conversationId.startsWith('grp_')) return DIRECT
    const g = await this.groups.get(conversationId)
    return g ? groupFacts(g) : { type: 'group', groupName: null, memberCount: null }
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

  /** Former members of a deleted group get 410 GROUP_DELETED with its details; anyone else passes. */
  async gate(conversationId: string, agentId: string): Promise<void> {
    if (!conversationId.startsWith('grp_')) return
    const g = await this.groups.get(conversationId)
    if (!g?.deletedAt) return
    const gone = await goneFor(this.sql, this.agents, g, agentId)
    if (gone) throw gone
  }
}
