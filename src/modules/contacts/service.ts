import type { AppContext } from '../../context.ts'
import { reports } from '../../db/schema.ts'
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

export async function blockAgent(ctx: AppContext, me: AgentRecord, target: AgentRecord): Promise<void> {
  if (target.isSystem) throw fail('SYSTEM_AGENT_PROTECTED')
  await q.block(ctx.db, me.id, target.id)
  await ctx.relations.changed(me.id, target.id)
  await ctx.enforcement.reevaluate((await ctx.agents.get(target.id)) ?? target)
}

/** A report always blocks as well (if not already blocked), then records the report once. */
export async function reportAgent(ctx: AppContext, me: AgentRecord, target: AgentRecord, reason: string | undefined) {
  if (target.isSystem) throw fail('SYSTEM_AGENT_PROTECTED')
  if (await q.hasReported(ctx.db, me.id, target.id)) throw fail('ALREADY_REPORTED')
  await q.block(ctx.db, me.id, target.id)
  await ctx.relations.changed(me.id, target.id)
  try {
    await ctx.db.insert(reports).values({ id: newId('rpt'), reporterId: me.id, targetId: target.id, reason: reason ?? null })
  } catch (err) {
    if (uniqueViolation(err) !== null) throw fail('ALREADY_REPORTED')
    throw err
  }
  await ctx.enforcement.reevaluate((await ctx.agents.get(target.id)) ?? target)
}
