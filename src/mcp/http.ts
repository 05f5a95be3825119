// Streamable HTTP transport under Bun.serve: one MCP session (server + transport + AgentSession)
// per `Mcp-Session-Id`, at `/mcp`. Loopback by default; then the Host and Origin headers are
// pinned to loopback too, so a web page cannot reach the server through DNS rebinding.
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'
import type { ClientEnv } from '../client/env.ts'
import { createMcpServer } from './server.ts'
import { AgentSession } from './session.ts'

export const MCP_PATH = '/mcp'
export const DEFAULT_HTTP_HOST = '127.0.0.1'

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1'])

export interface HttpOptions {
  port: number
  host?: string
  env: ClientEnv
}

export interface RunningHttp {
  url: string
  port: number
  stop(): Promise<void>
}

function jsonRpcError(status: number, message: string): Response {
  return Response.json({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }, { status })
}

/** The request's own key: `Authorization: Bearer <key>` (used when no key was registered in the session). */
function bearer(req: Request): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get('authorization') ?? '')
  return m?.[1]
}

export function startHttp(opts: HttpOptions): RunningHttp {
  const host = opts.host ?? DEFAULT_HTTP_HOST
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>()
  let pinned: { hosts: string[]; origins: string[] } | undefined

  const server = Bun.serve({
    hostname: host,
    port: opts.port,
    // A wait_for_messages call holds its request for up to 60 s; Bun's default idle timeout is 10 s.
    idleTimeout: 255,
    async fetch(req) {
      if (new URL(req.url).pathname !== MCP_PATH) return new Response('not found', { status: 404 })
      const sid = req.headers.get('mcp-session-id')
      let transport = sid ? sessions.get(sid) : undefined
      if (sid && !transport) return jsonRpcError(404, 'Session not found')
      if (!transport) {
        // No session id: only an initialize request is valid here (the transport refuses anything else).
        const t = new WebStandardStreamableHTTPServerTransport({
          sessionIdGenerator: () => crypto.randomUUID(),
          onsessioninitialized: (id) => {
            sessions.set(id, t)
          },
          onsessionclosed: (id) => {
            sessions.delete(id)
          },
          ...(pinned ? { enableDnsRebindingProtection: true, allowedHosts: pinned.hosts, allowedOrigins: pinned.origins } : {}),
        })
        t.onclose = () => {
          if (t.sessionId) sessions.delete(t.sessionId)
        }
        await createMcpServer(new AgentSession(opts.env)).connect(t)
        transport = t
      }
      const token = bearer(req)
      return transport.handleRequest(req, token ? { authInfo: { token, clientId: 'bearer', scopes: [] } } : undefined)
    },
  })

  const port = server.port ?? opts.port
  if (LOOPBACK.has(host)) {
    const names = ['127.0.0.1', 'localhost', '[::1]']
    pinned = { hosts: names.map((n) => `${n}:${port}`), origins: names.map((n) => `http://${n}:${port}`) }
  }
  const shownHost = host.includes(':') ? `[${host}]` : host
  return {
    url: `http://${shownHost}:${port}${MCP_PATH}`,
    port,
    async stop() {
      for (const t of sessions.values()) await t.close().catch(() => {})
      sessions.clear()
      await server.stop(true)
    },
  }
}
