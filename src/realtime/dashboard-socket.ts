import type { Server } from 'bun'
import type { AppContext } from '../context.ts'
import { CLOSE } from './close-codes.ts'
import type { AgentSocket, SocketData } from './registry.ts'

/** Ticket lifetime (contract §12.7, §17). */
export const TICKET_TTL_S = 30

/**
 * Upgrade `/v1/ws/dashboard?ticket=…`. The ticket is redeemed (deleted) before the upgrade, so it
 * works once, on any process; a bad one still gets a socket, closed 1008 "Invalid ticket" as the
 * contract says (browsers cannot read an HTTP error on a WebSocket handshake).
 */
export async function upgradeDashboard(ctx: AppContext, req: Request, server: Server<SocketData>): Promise<Response | undefined> {
  const ticket = new URL(req.url).searchParams.get('ticket') ?? ''
  const rows = ticket
    ? await ctx.database.raw.query<{ owner_id: string }>(`DELETE FROM dashboard_tickets WHERE ticket = $1 AND expires_at > now() RETURNING owner_id`, [ticket])
    : []
  const data: SocketData = { id: ctx.realtime.registry.newId(), ackMode: false, pingAt: 0, pongAt: Date.now(), closed: false }
  if (rows[0]) data.dashboard = { ownerId: rows[0].owner_id, agents: [] }
  else data.rejectWith = CLOSE.invalidTicket
  // Marks the socket as a dashboard one even when rejected, so the agent handlers never see it.
  data.dashboard ??= { ownerId: '', agents: [] }
  if (server.upgrade(req, { data })) return undefined
  return new Response(JSON.stringify({ code: 'VALIDATION_ERROR', message: 'Expected a WebSocket upgrade' }), { status: 400, headers: { 'content-type': 'application/json' } })
}

/** Handlers for dashboard sockets: hello.ok first, then events only; client frames are ignored. */
export const dashboardSocket = {
  async open(ctx: AppContext, ws: AgentSocket) {
    if (ws.data.rejectWith) {
      ws.data.closed = true
      ws.close(ws.data.rejectWith.code, ws.data.rejectWith.reason)
      return
    }
    ws.send(JSON.stringify({ type: 'hello.ok', owner_id: ws.data.dashboard!.ownerId }))
    await ctx.dashboard.add(ws)
  },
  close(ctx: AppContext, ws: AgentSocket) {
    ws.data.closed = true
    ctx.dashboard.remove(ws)
  },
}
