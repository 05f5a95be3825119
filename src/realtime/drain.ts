import type { AppContext } from '../context.ts'
import { storedRows } from '../modules/sync/queries.ts'
import { sendFrame } from './push.ts'
import type { AgentSocket } from './registry.ts'

/** Backlog drain (contract §12.2, §17): 200 per batch, 100 ms apart, at most 50 batches. */
export const DRAIN = { batch: 200, pauseMs: 100, maxBatches: 50 } as const

/**
 * After hello.ok, offer this socket (only this one) every `stored` envelope, oldest first, as
 * `message.new` frames in the sync-row shape. Ack-mode sockets leave envelopes stored until each
 * `ack` frame; legacy sockets mark them delivered as each frame is written.
 */
export async function drainBacklog(ctx: AppContext, ws: AgentSocket): Promise<void> {
  const agentId = ws.data.agentId!
  const agent = await ctx.agents.get(agentId)
  if (!agent || agent.pausedByOwner === 'full') return
  let after = 0n
  for (let batch = 0; batch < DRAIN.maxBatches; batch++) {
    if (ws.data.closed) return
    const rows = await storedRows(ctx, agentId, after, DRAIN.batch)
    for (const { position, ...row } of rows) {
      if (ws.data.closed) return
      if (sendFrame(ws, JSON.stringify({ type: 'message.new', payload: row }))) {
        ctx.metrics.delivered('socket')
        if (!ws.data.ackMode) ctx.acks.markDelivered(agentId, row.id)
      }
      after = position
    }
    if (rows.length < DRAIN.batch) return
    await Bun.sleep(DRAIN.pauseMs)
  }
}
