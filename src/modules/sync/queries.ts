import type { AppContext } from '../../context.ts'
import { ackThroughPosition, inbox } from '../../delivery/cursors.ts'
import { deliveryIdFromPosition } from '../../lib/ids.ts'
import { LONG_POLL } from '../../realtime/longpoll.ts'
import { publicMessage, rowToMessage } from '../messages/shape.ts'

/**
 * The caller's stored messages after a position, oldest first, as sync rows: the public message
 * plus its delivery fields (`delivery_id` encodes the message's position, `status: "stored"`).
 * Shared by `GET /v1/messages/sync` and the WebSocket backlog drain. Acks not yet applied are
 * applied first, so a reconnect does not get back what was just acknowledged.
 */
export async function storedRows(ctx: AppContext, recipientId: string, afterPosition: bigint, limit: number) {
  await ctx.acks.drain()
  const rows = await inbox(ctx.database.raw, recipientId, afterPosition, limit)
  const out = []
  for (const r of rows) {
    const m = rowToMessage(r)
    const pub = await ctx.provenance.deliver(await publicMessage(ctx.agents, m, await ctx.conversations.facts(m.conversationId)), recipientId)
    out.push({ ...pub, delivery_id: deliveryIdFromPosition(BigInt(r.pos)), status: 'stored' as const, delivered_at: null, read_at: null, position: BigInt(r.pos) })
  }
  return out
}

/** Every stored message of the caller at or before `position` becomes delivered; returns how many. */
export async function ackThrough(ctx: AppContext, recipientId: string, position: bigint): Promise<number> {
  await ctx.acks.drain()
  let n = 0
  for (const m of await ackThroughPosition(ctx.database.raw, recipientId, position)) n += m.released
  if (n > 0) ctx.backlog.release(recipientId, n)
  return n
}

/** A sync row as answered (the position stays inside). */
export type SyncRow = Omit<Awaited<ReturnType<typeof storedRows>>[number], 'position'>

/**
 * `GET /v1/messages/stream`: the caller's sync page as soon as it is non-empty, or `[]` after
 * `timeoutMs`. Between looks the request waits on a promise (`ctx.longPolls`), never in a loop:
 * a look happens at the start, once more after the wake subscription is in place (so nothing
 * committed in between is missed), then only when woken, at the slow safety re-check, or at the
 * deadline. A fully paused agent never looks (sync would answer `[]`): it waits out the timeout,
 * unless it is unpaused meanwhile. A disconnected client or a stopping server ends the wait with
 * `[]`.
 */
export async function longPoll(
  ctx: AppContext,
  agentId: string,
  signal: AbortSignal | undefined,
  o: { timeoutMs: number; limit: number; after: bigint },
): Promise<SyncRow[]> {
  const deadline = Date.now() + o.timeoutMs
  const look = async (): Promise<SyncRow[] | 'stop'> => {
    const a = await ctx.agents.get(agentId)
    if (!a || a.status === 'deleted' || a.status === 'suspended') return 'stop'
    if (a.pausedByOwner === 'full') return []
    return (await storedRows(ctx, agentId, o.after, o.limit)).map(({ position: _p, ...row }) => row)
  }
  if (ctx.longPolls.closing || signal?.aborted) return []
  const first = await look()
  if (first === 'stop') return []
  if (first.length > 0) return first
  const me = await ctx.agents.get(agentId)
  if (!me) return []
  const w = await ctx.longPolls.watch(agentId, me.handle)
  const onAbort = () => ctx.longPolls.finish(w)
  signal?.addEventListener('abort', onAbort)
  try {
    for (;;) {
      if (w.done) return []
      w.woken = false
      const rows = await look()
      if (rows === 'stop') return []
      if (rows.length > 0) return rows
      const left = deadline - Date.now()
      if (left <= 0) return []
      await ctx.longPolls.wait(w, Math.min(left, LONG_POLL.recheckMs))
    }
  } finally {
    signal?.removeEventListener('abort', onAbort)
    ctx.longPolls.unwatch(w)
  }
}
