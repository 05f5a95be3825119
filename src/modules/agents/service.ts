import { recordAudit } from '../../audit/events.ts'
import { eq, sql } from 'drizzle-orm'
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core'
import type { AppContext } from '../../context.ts'
import { agents } from '../../db/schema.ts'
import { fail } from '../../http/errors.ts'
import { CLOSE } from '../../realtime/close-codes.ts'
import type { AgentRecord } from './record.ts'
import { normalizeCapabilities } from './capabilities.ts'
import { safetyPatch, type SafetyPatch } from './safety.ts'
import { intlKnowsZone } from './wake-settings.ts'

export interface AgentUpdate {
  display_name?: string | null
  description?: string | null
  capabilities?: string[]
  settings?: {
    inbox_mode?: 'open' | 'contacts_only'
    group_invite_policy?: 'open' | 'contacts_only'
  } & SafetyPatch
}

export async function updateAgent(ctx: AppContext, agent: AgentRecord, u: AgentUpdate): Promise<AgentRecord> {
  const q = u.settings?.wake?.quiet_hours
  if (q) await checkQuietHours(ctx, q)
  const set: PgUpdateSetSource<typeof agents> = {}
  if (u.display_name !== undefined) set.displayName = u.display_name
  if (u.description !== undefined) set.description = u.description
  if (u.capabilities !== undefined) set.capabilities = normalizeCapabilities(u.capabilities)
  if (u.settings?.inbox_mode) set.inboxMode = u.settings.inbox_mode
  if (u.settings?.group_invite_policy) set.groupInvitePolicy = u.settings.group_invite_policy
  // Merged in the statement (jsonb ||), not from the cached row: two PATCHes of different
  // safeguards at once must both land.
  const safety = u.settings ? safetyPatch(u.settings) : null
  if (safety) set.safety = sql`${agents.safety} || ${JSON.stringify(safety)}::jsonb`
  if (Object.keys(set).length === 0) return agent
  set.updatedAt = new Date()
  const [row] = await ctx.db.update(agents).set(set).where(eq(agents.id, agent.id)).returning()
  await ctx.agents.changed(agent.id)
  return row!
}

/**
 * Quiet hours are applied by this process (Intl) and by Postgres (the webhook side, the digest):
 * the zone must be known to both, and an empty window is a mistake, not a setting.
 */
async function checkQuietHours(ctx: AppContext, q: { start: string; end: string; tz: string }) {
  const field = (name: string, message: string) => fail('VALIDATION_ERROR', `settings.wake.quiet_hours.${name} ${message}`, { field: `settings.wake.quiet_hours.${name}` })
  if (q.start === q.end) throw field('end', 'must differ from start')
  let known = intlKnowsZone(q.tz)
  if (known) {
    try {
      await ctx.database.raw.query(`SELECT now() AT TIME ZONE $1`, [q.tz])
    } catch {
      known = false
    }
  }
  if (!known) throw field('tz', `is not a known time zone: ${JSON.stringify(q.tz.slice(0, 64))}`)
}

/** Soft delete: the handle stays retired forever, the email is freed (lifetime cap still counts the row). */
export async function deleteAgent(ctx: AppContext, agent: AgentRecord): Promise<void> {
  if (agent.isSystem) throw fail('SYSTEM_AGENT_PROTECTED')
  await ctx.database.transaction(async (q) => {
    await q.query(`UPDATE agents SET status = 'deleted', api_key_hash = NULL, deleted_at = now(), updated_at = now() WHERE id = $1`, [agent.id])
    await recordAudit(q, { agentId: agent.id, actorType: 'agent', action: 'agent.deleted', metadata: {} })
  })
  await ctx.agents.changed(agent.id)
  await ctx.bus.publish({ type: 'agent.close_sockets', agentId: agent.id, ...CLOSE.accountDeleted })
}
