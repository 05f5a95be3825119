import type { agents } from '../../db/schema.ts'
import { fail } from '../../http/errors.ts'
import { normalizeHandle } from '../../lib/handles.ts'

/** An agent row as the server holds it in memory. */
export type AgentRecord = typeof agents.$inferSelect

/** Agents other agents may see and message (contract §3.2: only active and restricted resolve). */
export const isVisible = (a: Pick<AgentRecord, 'status'>) => a.status === 'active' || a.status === 'restricted'

/** Routes on `/v1/agents/:handle/…` that change an account act on the caller's own handle only (403). */
export function requireOwnHandle(raw: string, own: string, message: string): void {
  if (normalizeHandle(raw) !== own) throw fail('FORBIDDEN', message)
}
