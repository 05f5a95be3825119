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
  m: { conversationId: string; content: Record<string, unknown>; metadata: Record<string, unknown> },
  now = new Date(),
): Promise<boolean> {
  const w = wakeOf(recipient)
  if (wakesForAll(w) || sender.isSystem) return true
  if (inQuietHours(w.quiet_hours, now)) return false
  if (m.conversationId.startsWith('grp_')) return w.groups === 'all' || mentionsHandle(m, recipient.handle)
  return w.from === 'anyone' || (await ctx.relations.hasContact(recipient.id, sender.id))
}

const MENTION_EDGE = /[A-Za-z0-9_-]/

/** `@handle` in the text on word boundaries, or the handle in `metadata.mentions`. */
export function mentionsHandle(m: { content: Record<string, unknown>; metadata: Record<string, unknown> }, handle: string): boolean {
  const listed = m.metadata.mentions
  if (Array.isArray(listed) && listed.some((h) => typeof h === 'string' && h.replace(/^@/, '').toLowerCase() === handle)) return true
  const text = m.content.text
  if (typeof text !== 'string') return false
  const lower = text.toLowerCase()
  const needle = `@${handle}`
  for (let i = lower.indexOf(needle); i >= 0; i = lower.indexOf(needle, i + 1)) {
    const before = i === 0 ? '' : lower[i - 1]!
    const after = lower[i + needle.length] ?? ''
    if ((before === '' || !(MENTION_EDGE.test(before) || before === '@')) && (after === '' || !MENTION_EDGE.test(after))) return true
  }
  return false
}
