import type { RawSql } from '../../db/client.ts'
import { ApiError } from '../../http/errors.ts'
import type { AgentStore } from '../agents/store.ts'
import type { GroupRow } from './store.ts'

/** 410 GROUP_DELETED with the details the SDK's GroupDeletedError reads (contract §10.5). */
export async function deletedError(agents: AgentStore, g: GroupRow): Promise<ApiError> {
  const by = g.deletedBy ? await agents.get(g.deletedBy) : null
  return new ApiError('GROUP_DELETED', 'Group has been deleted', {
    group_id: g.id,
    deleted_by_handle: by?.handle ?? null,
    deleted_at: g.deletedAt!.toISOString(),
  })
}

/**
 * For a deleted group: the 410 a former member gets, or null for anyone who never belonged (the
 * caller answers them with its own masked 404).
 */
export async function goneFor(sql: RawSql, agents: AgentStore, g: GroupRow, agentId: string): Promise<ApiError | null> {
  const was = await sql.query('SELECT 1 FROM conversation_members WHERE conversation_id = $1 AND agent_id = $2', [g.id, agentId])
  return was.length > 0 ? deletedError(agents, g) : null
}
