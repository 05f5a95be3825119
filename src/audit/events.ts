import type { RawSql } from '../db/client.ts'
import { newId } from '../lib/ids.ts'

/** Audit actions of contract §15, in one list (the dashboard's activity timeline reads them). */
export const AUDIT_ACTIONS = [
  'agent.created',
  'agent.status_changed',
  'agent.key_rotated',
  'agent.deleted',
  'agent.blocked',
  'agent.reported',
  'agent.claimed',
  'agent.released',
  'agent.paused',
  'agent.unpaused',
  'agent.claim_revoked',
  'agent.claim_attempted',
  'owner.created',
  'owner.signed_in',
  'owner.signed_out_all',
  // Issue 16: two agents stopped answering each other (metadata: conversation, peer, turns).
  'conversation.loop_detected',
  // Issue 16.6, approval before send: the owner set the mode; a send was held, approved, rejected.
  'agent.approval_mode_changed',
  'message.approval_requested',
  'message.approved',
  'message.rejected',
] as const
export type AuditAction = (typeof AUDIT_ACTIONS)[number]
export type ActorType = 'agent' | 'owner' | 'system' | 'operator'

export interface AuditEvent {
  agentId?: string | null
  ownerId?: string | null
  actorType: ActorType
  action: AuditAction
  metadata?: Record<string, unknown>
}

/**
 * Record audit events. Callers pass the transaction of the change the events describe, so an
 * event exists exactly when its change committed. Lives below the API areas: registration,
 * contacts, enforcement and owners all write here.
 */
export async function recordAudit(q: RawSql, ...events: AuditEvent[]): Promise<void> {
  if (events.length === 0) return
  await q.query(
    // Millisecond timestamps: exactly what the ISO strings of the API carry, so a page cursor
    // (`before`, `before_id`) round-trips without losing events to truncation.
    `INSERT INTO audit_events (id, agent_id, owner_id, actor_type, action, metadata, created_at)
     SELECT i, a, o, t, x, m::jsonb, date_trunc('milliseconds', now()) FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(i, a, o, t, x, m)`,
    [
      events.map(() => newId('evt')),
      events.map((e) => e.agentId ?? null),
      events.map((e) => e.ownerId ?? null),
      events.map((e) => e.actorType),
      events.map((e) => e.action),
      events.map((e) => JSON.stringify(e.metadata ?? {})),
    ],
  )
}
