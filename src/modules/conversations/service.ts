import type { RawSql } from '../../db/client.ts'
import type { AgentStore } from '../agents/store.ts'
import type { GroupStore } from '../groups/store.ts'
import { DIRECT, type ConversationFacts } from '../messages/shape.ts'
import { ApiError } from '../../http/errors.ts'

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
    return { type: 'group', groupName: g?.name ?? null, memberCount: g ? g.members.length : null }
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
    const was = await this.sql.query('SELECT 1 FROM conversation_members WHERE conversation_id = $1 AND agent_id = $2', [conversationId, agentId])
    if (was.length === 0) return
    const by = g.deletedBy ? await this.agents.get(g.deletedBy) : null
    throw new ApiError('GROUP_DELETED', 'Group has been deleted', {
      group_id: g.id,
      deleted_by_handle: by?.handle ?? null,
      deleted_at: g.deletedAt.toISOString(),
    })
  }
}
