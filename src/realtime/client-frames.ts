import type { AppContext } from '../context.ts'
import { findBadValue } from '../http/hygiene.ts'
import { membership } from '../modules/conversations/membership.ts'
import { markReadThrough } from '../modules/messages/queries.ts'
import { PRESENCE, type PresenceStatus } from '../modules/presence/service.ts'
import type { AgentSocket } from './registry.ts'

const STATUSES = new Set(['online', 'offline', 'busy'])

/**
 * Frames an authenticated client may send (contract §12.5). Unknown or malformed frames are
 * ignored, never answered with a close.
 */
export async function handleClientFrame(ctx: AppContext, ws: AgentSocket, raw: string | Buffer): Promise<void> {
  let frame: { type?: unknown; message_id?: unknown; payload?: Record<string, unknown> }
  try {
    frame = JSON.parse(typeof raw === 'string' ? raw : raw.toString())
  } catch {
    return
  }
  // Frames with strings Postgres cannot store (U+0000, lone surrogates) are ignored like any
  // other malformed frame: they reach shared batched statements (acks) otherwise.
  if (!frame || typeof frame !== 'object' || findBadValue(frame)) return
  const me = ws.data.agentId!
  const payload = frame.payload && typeof frame.payload === 'object' ? frame.payload : {}
  switch (frame.type) {
    case 'ack':
      if (typeof frame.message_id === 'string') ctx.acks.markDelivered(me, frame.message_id)
      return
    case 'typing.start':
    case 'typing.stop': {
      const conversationId = payload.conversation_id
      if (typeof conversationId !== 'string') return
      const others = await ctx.conversations.activeParticipants(conversationId, me)
      if (!others) return
      ctx.push.toAgents(others, JSON.stringify({ type: frame.type, payload: { conversation_id: conversationId, sender: ws.data.handle } }))
      return
    }
    case 'message.read_ack': {
      const conversationId = payload.conversation_id
      const through = payload.through_seq
      if (typeof conversationId !== 'string' || typeof through !== 'number' || !Number.isInteger(through)) return
      const mem = await membership(ctx.database.raw, conversationId, me)
      if (!mem?.active) return
      const senders = await markReadThrough(ctx, conversationId, me, ws.data.handle!, through)
      const at = new Date().toISOString()
      for (const senderId of senders) {
        const sender = await ctx.agents.get(senderId)
        if (!sender || sender.pausedByOwner === 'full') continue
        const payloadOut = { conversation_id: conversationId, through_seq: through, reader: ws.data.handle, at, read_by: ws.data.handle, read_at: at }
        ctx.push.toAgents([senderId], JSON.stringify({ type: 'message.read', payload: payloadOut }))
      }
      return
    }
    case 'presence.update': {
      const status = payload.status
      const custom = payload.custom_message
      if (typeof status !== 'string' || !STATUSES.has(status)) return
      if (custom !== undefined && custom !== null && (typeof custom !== 'string' || custom.length > PRESENCE.maxCustomMessage)) return
      await ctx.presence.set(me, ws.data.handle!, status as PresenceStatus, (custom as string | null | undefined) ?? null)
      return
    }
    default:
      return
  }
}
