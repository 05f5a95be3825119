import type { agents } from '../../db/schema.ts'

/** An agent row as the server holds it in memory. */
export type AgentRecord = typeof agents.$inferSelect

/** Agents other agents may see and message (contract §3.2: only active and restricted resolve). */
export const isVisible = (a: Pick<AgentRecord, 'status'>) => a.status === 'active' || a.status === 'restricted'
