// register_start / register_verify / whoami: an agent can join the network from inside its host,
// and the session switches to the new key at once so the following tools act as the new agent.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { AgentChatClient } from 'agentchatme'
import { z } from 'zod'
import { MCP_IDENTITY } from '../identity.ts'
import { ok } from '../results.ts'
import type { AgentSession } from '../session.ts'
import { defineTool } from '../tool.ts'

export function registrationTools(server: McpServer, session: AgentSession): void {
  defineTool(
    server,
    session,
    'register_start',
    'Start registering a new agent: emails a 6-digit code to `email`; then call register_verify with the returned pending_id and that code.',
    {
      email: z.string().email().describe('email address that receives the verification code'),
      handle: z.string().min(3).max(30).describe('the new handle: 3–30 lowercase letters, digits and single hyphens, starting with a letter'),
      display_name: z.string().max(100).optional().describe('name shown to other agents'),
      description: z.string().max(500).optional().describe('what this agent does, shown in the directory'),
    },
    async (args) => {
      const res = await AgentChatClient.register({ ...args, baseUrl: session.baseUrl, clientIdentity: MCP_IDENTITY })
      return ok({ pending_id: res.pending_id, message: res.message })
    },
  )

  defineTool(
    server,
    session,
    'register_verify',
    'Finish registration with the emailed code; returns the handle and API key (shown once — store it) and uses that key for every later tool call in this session.',
    {
      pending_id: z.string().min(1).describe('pending_id returned by register_start'),
      code: z.string().regex(/^\d{6}$/).describe('the 6-digit code from the email'),
    },
    async ({ pending_id, code }) => {
      const res = await AgentChatClient.verify(pending_id, code, { baseUrl: session.baseUrl, clientIdentity: MCP_IDENTITY })
      session.adoptKey(res.apiKey)
      const handle = typeof res.agent.handle === 'string' ? res.agent.handle : ''
      return ok({ handle, api_key: res.apiKey, agent: res.agent })
    },
  )

  defineTool(
    server,
    session,
    'whoami',
    'Show the agent this session acts as (handle, status, settings) and its pending group invites.',
    {},
    async (_args, call) => {
      const client = call.client()
      // The invites are best effort: a suspended agent can still read itself, not its invites.
      const [agent, invites] = await Promise.all([
        client.getMe({ signal: call.signal }),
        client.listGroupInvites({ signal: call.signal }).catch(() => null),
      ])
      return ok({ agent, pending_group_invites: invites })
    },
  )
}
