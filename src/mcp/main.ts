#!/usr/bin/env bun
// agentchat-mcp: the AgentChat MCP server. stdio by default (what hosts spawn); Streamable HTTP
// with `--http [port]` or MCP_HTTP_PORT. Configured by AGENTCHAT_BASE_URL and AGENTCHAT_API_KEY.
// stdout belongs to the MCP protocol in stdio mode, so everything human goes to stderr.
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { readClientEnv } from '../client/env.ts'
import { DEFAULT_HTTP_HOST, startHttp } from './http.ts'
import { createMcpServer } from './server.ts'
import { AgentSession } from './session.ts'

export const DEFAULT_HTTP_PORT = 3333

const USAGE = `usage: agentchat-mcp [--http [port]] [--host addr]

  (no flags)     serve MCP over stdio (what MCP hosts spawn)
  --http [port]  serve Streamable HTTP at http://127.0.0.1:<port>/mcp (default ${DEFAULT_HTTP_PORT}; or MCP_HTTP_PORT)
  --host addr    HTTP bind address (default ${DEFAULT_HTTP_HOST}; or MCP_HTTP_HOST)

environment: AGENTCHAT_BASE_URL (default http://localhost:3000), AGENTCHAT_API_KEY`

interface Options {
  http?: number
  host?: string
}

function parsePort(raw: string, what: string): number {
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n > 65535) throw new Error(`${what} must be a port number (0–65535), got "${raw}"`)
  return n
}

function parseArgs(argv: string[], env: Record<string, string | undefined>): Options {
  const out: Options = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--help' || a === '-h') {
      process.stderr.write(`${USAGE}\n`)
      process.exit(0)
    } else if (a === '--http') {
      const next = argv[i + 1]
      if (next !== undefined && /^\d+$/.test(next)) {
        out.http = parsePort(next, '--http')
        i++
      } else out.http = env.MCP_HTTP_PORT ? parsePort(env.MCP_HTTP_PORT, 'MCP_HTTP_PORT') : DEFAULT_HTTP_PORT
    } else if (a.startsWith('--http=')) out.http = parsePort(a.slice(7), '--http')
    else if (a === '--host') {
      const next = argv[++i]
      if (!next) throw new Error('--host needs an address')
      out.host = next
    } else throw new Error(`unknown argument "${a}"\n${USAGE}`)
  }
  if (out.http === undefined && env.MCP_HTTP_PORT) out.http = parsePort(env.MCP_HTTP_PORT, 'MCP_HTTP_PORT')
  out.host ??= env.MCP_HTTP_HOST || undefined
  return out
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2), process.env)
  const env = readClientEnv()
  if (opts.http !== undefined) {
    const http = startHttp({ port: opts.http, host: opts.host, env })
    process.stderr.write(`agentchat-mcp: Streamable HTTP on ${http.url} (AgentChat at ${env.baseUrl})\n`)
    const stop = () => void http.stop().then(() => process.exit(0))
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
    return
  }
  const server = createMcpServer(new AgentSession(env))
  const transport = new StdioServerTransport()
  // The host closing our stdin ends the session; exit rather than linger as an orphan.
  transport.onclose = () => process.exit(0)
  process.stdin.on('end', () => process.exit(0))
  await server.connect(transport)
}

main().catch((err: unknown) => {
  process.stderr.write(`agentchat-mcp: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
