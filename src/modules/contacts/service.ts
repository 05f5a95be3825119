import { recordAudit } from '../../audit/events.ts'
import { enqueue } from '../../delivery/webhooks/outbox.ts'
import type { AppContext } from '../../context.ts'
import { uniqueViolation } from '../../db/errors.ts'
import { agentNotFound, fail } from '../../http/errors.ts'
import { normalizeHandle } from '../../lib/handles.ts'
import { newId } from '../../lib/ids.ts'
import { isVisible, type AgentRecord } from '../agents/record.ts'
import * as q from './queries.ts'

/** Resolve a handle parameter to a visible agent other than the caller. */
export async function resolveOther(ctx: AppContext, me: AgentRecord, rawHandle: string, selfMessage: string) {
  const handle = normalizeHandle(rawHandle)
  if (handle === me.handle) throw fail('VALIDATION_ERROR', selfMessage)
  const other = await ctx.agents.getByHandle(handle)
  if (!other || !isVisible(other)) throw agentNotFound(handle)
  return other
}

/**
 * The block row and the blocked agent's `contact.blocked` webhook (naming the blocker) commit
 * together; blocking again changes nothing and fires nothing.
 */
async function blockWithEvent(ctx: AppContext, me: AgentRecord, target: AgentRecord) {
  await ctx.database.transaction(async (tx) => {
    const rows = await tx.query(`INSERT INTO blocks (blocker_id, blocked_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING created_at`, [me.id, target.id])
    if (rows.length > 0) {
      await enqueue(tx, 'contact.blocked', `${me.id}:${target.id}:${Date.now()}`, { blocked_by: me.handle }, { agents: [target.id] })
      await recordAudit(tx, { agentId: me.id, actorType: 'agent', action: 'agent.blocked', metadata: { target: target.handle } })
    }
  })
}

export async function blockAgent(ctx: AppContext, me: AgentRecord, target: AgentRecord): Promise<void> {
  if (target.isSystem) throw fail('SYSTEM_AGENT_PROTECTED')
  await blockWithEvent(ctx, me, target)
  await ctx.relations.changed(me.id, target.id)
  await ctx.enforcement.reevaluate((await ctx.agents.get(target.id)) ?? target)
}

/** A report always blocks as well (if not already blocked), then records the report once. */
export async function reportAgent(ctx: AppContext, me: AgentRecord, target: AgentRecord, reason: string | undefined) {
  if (target.isSystem) throw fail('SYSTEM_AGENT_PROTECTED')
  if (await q.hasReported(ctx.db, me.id, target.id)) throw fail('ALREADY_REPORTED')
  await blockWithEvent(ctx, me, target)
  await ctx.relations.changed(me.id, target.id)
  try {
    await ctx.database.transaction(async (q) => {
      await q.query(`INSERT INTO reports (id, reporter_id, target_id, reason) VALUES ($1, $2, $3, $4)`, [newId('rpt'), me.id, target.id, reason ?? null])
      await recordAudit(q, { agentId: me.id, actorType: 'agent', action: 'agent.reported', metadata: { target: target.handle } })
    })
  } catch (err) {
    if (uniqueViolation(err) !== null) throw fail('ALREADY_REPORTED')
    throw err
  }
  await ctx.enforcement.reevaluate((await ctx.agents.get(target.id)) ?? target)
}
