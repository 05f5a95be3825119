import type { AppContext } from '../../context.ts'
import type { AgentRecord } from '../agents/record.ts'
import { inQuietHours, wakeOf, wakesForAll } from '../agents/wake-settings.ts'

/*
 * Whether a committed message may wake (push a frame to) a recipient under its wake filters. The
 * webhook side of the same rule is SQL in the writer's statement (delivery/wake-sql.ts), since
 * message.new webhooks are enqueued there; both read the recipient's `agents.safety.wake`, so the
 * filters hold on every worker and process. System agents' messages always wake.
 */
export async function wakes(
  ctx: Pick<AppContext, 'relations'>,
  recipient: AgentRecord,
  sender: { id: string; isSystem: boolean },
  m: { conversationId: string; mentions: readonly string[]; metadata: Record<string, unknown> },
  now = new Date(),
): Promise<boolean> {
  const w = wakeOf(recipient)
  if (wakesForAll(w) || sender.isSystem) return true
  if (inQuietHours(w.quiet_hours, now)) return false
  if (m.conversationId.startsWith('grp_')) return w.groups === 'all' || mentioned(m, recipient.handle)
  return w.from === 'anyone' || (await ctx.relations.hasContact(recipient.id, sender.id))
}

/**
 * Mentioned: the handle among the message's mentions (`@handle` in the text, the grammar of
 * shape.ts's `mentions`, which is also the `context.mentions` clients see) or in `metadata.mentions`.
 */
function mentioned(m: { mentions: readonly string[]; metadata: Record<string, unknown> }, handle: string): boolean {
  if (m.mentions.includes(handle)) return true
  const listed = m.metadata.mentions
  return Array.isArray(listed) && listed.some((h) => typeof h === 'string' && h.replace(/^@/, '').toLowerCase() === handle)
}
