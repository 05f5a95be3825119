import type { Bus } from '../../bus/bus.ts'
import type { RawSql } from '../../db/client.ts'
import { LazyCache } from '../../lib/lazy-cache.ts'

import type { ConversationFacts } from '../messages/shape.ts'

/** Group limits (contract §10.1, §17). */
export const GROUP_LIMITS = { maxMembers: 256, maxInitialHandles: 255, invitesPerDay: 50, messagesPerSecond: 20 } as const

export interface GroupMemberRow {
  agentId: string
  role: 'admin' | 'member'
  joinedSeq: number
  joinedAt: Date
}

export interface GroupRow {
  id: string
  name: string
  description: string | null
  avatarUrl: string | null
  createdBy: string
  createdAt: Date
  lastMessageAt: Date | null
  lastSeq: number
  deletedAt: Date | null
  deletedBy: string | null
  /** Active members, earliest joined first (tie: agent id). */
  members: GroupMemberRow[]
}

interface Row {
  id: string
  name: string
  description: string | null
  avatar_url: string | null
  created_by: string
  created_at: Date | string
  last_message_at: Date | string | null
  last_seq: string | number
  deleted_at: Date | string | null
  deleted_by: string | null
}

/**
 * Groups with their active members, cached for the send and fan-out paths; any membership or
 * settings change publishes `conversation.invalidate` so every worker reloads.
 */
export class GroupStore {
  private readonly cache: LazyCache<string, GroupRow | null>

  constructor(
    private readonly sql: RawSql,
    private readonly bus: Bus,
  ) {
    this.cache = new LazyCache((id) => this.load(this.sql, id), 30_000)
    bus.subscribe((e) => {
      if (e.type === 'conversation.invalidate' && e.conversationId) this.cache.invalidate(e.conversationId)
    })
  }

  private async load(sql: RawSql, id: string): Promise<GroupRow | null> {
    const rows = await sql.query<Row>(
      `SELECT id, name, description, avatar_url, created_by, created_at, last_message_at, last_seq, deleted_at, deleted_by
       FROM conversations WHERE id = $1 AND type = 'group'`,
      [id],
    )
    const r = rows[0]
    if (!r) return null
    const members = await sql.query<{ agent_id: string; role: 'admin' | 'member'; joined_seq: string | number; joined_at: Date | string }>(
      `SELECT agent_id, role, joined_seq, joined_at FROM conversation_members
       WHERE conversation_id = $1 AND left_at IS NULL ORDER BY joined_at, agent_id`,
      [id],
    )
    return {
      id: r.id,
      name: r.name,
      description: r.description,
      avatarUrl: r.avatar_url,
      createdBy: r.created_by,
      createdAt: new Date(r.created_at),
      lastMessageAt: r.last_message_at ? new Date(r.last_message_at) : null,
      lastSeq: Number(r.last_seq),
      deletedAt: r.deleted_at ? new Date(r.deleted_at) : null,
      deletedBy: r.deleted_by,
      members: members.map((m) => ({ agentId: m.agent_id, role: m.role, joinedSeq: Number(m.joined_seq), joinedAt: new Date(m.joined_at) })),
    }
  }

  get(id: string): Promise<GroupRow | null> {
    if (!id.startsWith('grp_')) return Promise.resolve(null)
    return this.cache.get(id)
  }

  /** Fresh from Postgres (for decisions that must see the latest membership). */
  fresh(id: string, sql: RawSql = this.sql): Promise<GroupRow | null> {
    return id.startsWith('grp_') ? this.load(sql, id) : Promise.resolve(null)
  }

  async changed(id: string): Promise<void> {
    this.cache.invalidate(id)
    await this.bus.publish({ type: 'conversation.invalidate', conversationId: id, agentIds: [] })
  }
}

/** What a message's `context.conversation` says about a group. */
export const groupFacts = (g: GroupRow): ConversationFacts => ({ type: 'group', groupName: g.name, memberCount: g.members.length })
