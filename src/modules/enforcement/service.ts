import { eq, sql } from 'drizzle-orm'
import type { Bus } from '../../bus/bus.ts'
import type { Database } from '../../db/client.ts'
import { agents } from '../../db/schema.ts'
import { recordAudit } from '../../audit/events.ts'
import { CLOSE } from '../../realtime/close-codes.ts'
import type { AgentRecord } from '../agents/record.ts'
import type { AgentStore } from '../agents/store.ts'

/** Community enforcement thresholds (contract §16.1). */
export const THRESHOLDS = {
  restrictBlocks24h: 15,
  suspendBlocks7d: 50,
  suspendReports7d: 10,
} as const

export type Verdict = 'active' | 'restricted' | 'suspended'

export function verdict(counts: { blocks24h: number; blocks7d: number; reports7d: number }): Verdict {
  if (counts.blocks7d >= THRESHOLDS.suspendBlocks7d || counts.reports7d >= THRESHOLDS.suspendReports7d) return 'suspended'
  if (counts.blocks24h >= THRESHOLDS.restrictBlocks24h) return 'restricted'
  return 'active'
}

/**
 * Only blocks and reports from agents the target itself cold-contacted (it initiated the direct
 * conversation) count, so nobody can be restricted by strangers ganging up on them.
 */
export class Enforcement {
  constructor(
    private readonly database: Database,
    private readonly store: AgentStore,
    private readonly bus: Bus,
  ) {}

  async counts(targetId: string) {
    const [row] = await this.database.rows<{ blocks24h: number; blocks7d: number; reports7d: number }>(sql`
      WITH initiated AS (
        SELECT CASE WHEN c.agent_a = ${targetId} THEN c.agent_b ELSE c.agent_a END AS other
        FROM conversations c
        WHERE c.type = 'direct' AND c.initiator_id = ${targetId}
      )
      SELECT
        (SELECT count(*)::int FROM blocks b WHERE b.blocked_id = ${targetId}
           AND b.created_at > now() - interval '24 hours' AND b.blocker_id IN (SELECT other FROM initiated)) AS "blocks24h",
        (SELECT count(*)::int FROM blocks b WHERE b.blocked_id = ${targetId}
           AND b.created_at > now() - interval '7 days' AND b.blocker_id IN (SELECT other FROM initiated)) AS "blocks7d",
        (SELECT count(*)::int FROM reports r WHERE r.target_id = ${targetId}
           AND r.created_at > now() - interval '7 days' AND r.reporter_id IN (SELECT other FROM initiated)) AS "reports7d"
    `)
    return { blocks24h: Number(row?.blocks24h ?? 0), blocks7d: Number(row?.blocks7d ?? 0), reports7d: Number(row?.reports7d ?? 0) }
  }

  /**
   * Re-evaluate after a block or report, and on each request of a restricted agent: restrict,
   * suspend, or lift a restriction. Suspension is never lifted automatically.
   */
  async reevaluate(agent: AgentRecord): Promise<AgentRecord> {
    if (agent.isSystem || agent.status === 'suspended' || agent.status === 'deleted') return agent
    const next = verdict(await this.counts(agent.id))
    if (next === agent.status) return agent
    // The status and its audit event commit together. The row is locked and its status read
    // afresh: the caller's record may come from a cache another worker has not refreshed yet, and
    // a guard on that stale status would skip the change (a tenth report answered, the agent
    // never suspended); the lock keeps two concurrent re-evaluations from both recording it.
    const changed = await this.database.transaction(async (q) => {
      // (System agents were turned away above: that flag never changes.)
      const [row] = await q.query<{ status: string }>(`SELECT status FROM agents WHERE id = $1 FOR UPDATE`, [agent.id])
      if (!row || row.status === next || row.status === 'suspended' || row.status === 'deleted') return false
      await q.query(`UPDATE agents SET status = $2, updated_at = now() WHERE id = $1`, [agent.id, next])
      await recordAudit(q, { agentId: agent.id, actorType: 'system', action: 'agent.status_changed', metadata: { from: row.status, to: next, reason: 'community_enforcement' } })
      return true
    })
    const [updated] = await this.database.db.select().from(agents).where(eq(agents.id, agent.id))
    await this.store.changed(agent.id)
    if (!changed) return updated ?? agent
    if (next === 'suspended') await this.bus.publish({ type: 'agent.close_sockets', agentId: agent.id, ...CLOSE.accountSuspended })
    return updated ?? agent
  }
}
