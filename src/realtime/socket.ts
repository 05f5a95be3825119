import type { Server, WebSocketHandler } from 'bun'
import type { AppContext } from '../context.ts'
import { agentForKey, requestKey } from '../http/auth.ts'
import { handleClientFrame } from './client-frames.ts'
import { CLOSE } from './close-codes.ts'
import { dashboardSocket } from './dashboard-socket.ts'
import { drainBacklog } from './drain.ts'
import type { AgentSocket, SocketData } from './registry.ts'

/** WebSocket timings (contract §12, §17). */
export const WS = { helloTimeoutMs: 5_000 } as const

/** The longest hello.ok waits for the agent's delivery channel to be subscribed. */
const SUBSCRIBE_WAIT_MS = 1_000

/**
 * Upgrade `/v1/ws`. Header auth (`Authorization: Bearer`) is checked here; without the header the
 * socket opens unauthenticated and must send a HELLO frame within 5 s.
 */
export async function upgrade(ctx: AppContext, req: Request, server: Server<SocketData>): Promise<Response | undefined> {
  const data: SocketData = { id: ctx.realtime.registry.newId(), ackMode: false, pingAt: 0, pongAt: Date.now(), closed: false }
  const key = requestKey(req.headers)
  if (key) {
    const agent = await agentForKey(ctx, key)
    if (!agent) data.rejectWith = CLOSE.invalidToken
    else if (agent.status === 'suspended') data.rejectWith = CLOSE.accountSuspended
    else {
      data.agentId = agent.id
      data.handle = agent.handle
      data.headerCapabilities = (req.headers.get('x-agentchat-capabilities') ?? '').split(',').map((s) => s.trim().toLowerCase())
    }
  }
  if (server.upgrade(req, { data })) return undefined
  return new Response(JSON.stringify({ code: 'VALIDATION_ERROR', message: 'Expected a WebSocket upgrade' }), {
    status: 400,
    headers: { 'content-type': 'application/json' },
  })
}

function close(ws: AgentSocket, c: { code: number; reason: string }) {
  if (ws.data.closed) return
  ws.data.closed = true
  ws.close(c.code, c.reason)
}

/**
 * Authenticated: register, send hello.ok (strictly first) once the agent's delivery channel is
 * subscribed — so a presence or typing frame published anywhere after the client saw hello.ok
 * reaches it (messages are drained from the database anyway) — then presence and the drain.
 * The wait is bounded: during a Redis outage hello.ok goes out anyway, as before.
 */
async function authenticated(ctx: AppContext, ws: AgentSocket, offered: string[]) {
  const rt = ctx.realtime
  ws.data.ackMode = offered.includes('ack')
  ws.data.pending = true
  const first = rt.registry.add(ws)
  await Promise.race([rt.registry.joined(ws.data.agentId!), Bun.sleep(SUBSCRIBE_WAIT_MS)])
  ws.data.pending = false
  if (ws.data.closed) return
  ws.send(JSON.stringify(ws.data.ackMode ? { type: 'hello.ok', capabilities: ['ack'] } : { type: 'hello.ok' }))
  await ctx.presence.connected(ws.data.agentId!, ws.data.handle!, first)
  void drainBacklog(ctx, ws).catch((err) => ctx.log.warn({ err }, 'backlog drain failed'))
}

export function websocketHandlers(ctx: AppContext): WebSocketHandler<SocketData> {
  return {
    // Our own heartbeat (realtime/heartbeat.ts) pings every 30 s; Bun's idle close stays as a backstop.
    sendPings: false,
    idleTimeout: 120,
    maxPayloadLength: 1024 * 1024,
    open(ws) {
      if (ws.data.dashboard) return void dashboardSocket.open(ctx, ws).catch((err) => ctx.log.warn({ err }, 'dashboard socket failed'))
      if (ws.data.rejectWith) return close(ws, ws.data.rejectWith)
      if (ws.data.agentId) {
        void authenticated(ctx, ws, ws.data.headerCapabilities ?? [])
        return
      }
      ws.data.helloTimer = setTimeout(() => close(ws, CLOSE.helloRequired), WS.helloTimeoutMs)
    },
    async message(ws, raw) {
      if (ws.data.dashboard) return // read-only (contract §12.7)
      if (ws.data.agentId) {
        // Registered sockets only: frames that race with authentication are ignored.
        if (ctx.realtime.registry.socketsOf(ws.data.agentId)?.has(ws)) await handleClientFrame(ctx, ws, raw)
        return
      }
      if (ws.data.helloTimer === undefined) return // HELLO already being checked
      clearTimeout(ws.data.helloTimer)
      let frame: { type?: unknown; api_key?: unknown; token?: unknown; capabilities?: unknown }
      try {
        frame = JSON.parse(typeof raw === 'string' ? raw : raw.toString())
      } catch {
        return close(ws, CLOSE.helloRequiredFirst)
      }
      const key = typeof frame?.api_key === 'string' ? frame.api_key : typeof frame?.token === 'string' ? frame.token : null
      if (frame?.type !== 'hello' || !key) return close(ws, CLOSE.helloRequiredFirst)
      ws.data.helloTimer = undefined
      const agent = await agentForKey(ctx, key)
      if (ws.data.closed) return
      if (!agent) return close(ws, CLOSE.invalidToken)
      if (agent.status === 'suspended') return close(ws, CLOSE.accountSuspended)
      ws.data.agentId = agent.id
      ws.data.handle = agent.handle
      const caps = Array.isArray(frame.capabilities) ? frame.capabilities.filter((c): c is string => typeof c === 'string') : []
      await authenticated(ctx, ws, caps)
    },
    pong(ws) {
      ws.data.pongAt = Date.now()
      if (ws.data.agentId) ctx.presence.touch(ws.data.agentId)
    },
    close(ws) {
      if (ws.data.dashboard) return dashboardSocket.close(ctx, ws)
      ws.data.closed = true
      if (ws.data.helloTimer) clearTimeout(ws.data.helloTimer)
      const agentId = ws.data.agentId
      if (!agentId) return
      const last = ctx.realtime.registry.remove(ws)
      // Acks this socket sent are applied now, so a reconnect (maybe to another worker) is not
      // offered them again.
      void ctx.acks.drain().catch(() => {})
      void ctx.presence.disconnected(agentId, ws.data.handle!, last).catch(() => {})
    },
  }
}
