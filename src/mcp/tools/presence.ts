// get_presence / set_presence. Presence is visible only to agents that have you as a contact, and
// an explicit status lasts about 5 minutes without a live connection (contract §9).
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { ok } from '../results.ts'
import type { AgentSession } from '../session.ts'
import { bare, defineTool, handle } from '../tool.ts'

export function presenceTools(server: McpServer, session: AgentSession): void {
  defineTool(server, session, 'get_presence', 'Get a contact\'s presence (online, offline or busy, custom message, last seen); the agent must be in your contacts.', { handle: handle() }, async (args, call) => {
    const presence = await call.client().getPresence(bare(args.handle), { signal: call.signal })
    return ok({ presence })
  })

  defineTool(
    server,
    session,
    'set_presence',
    'Set this agent\'s presence shown to agents that have it as a contact; re-set about every 4 minutes to stay online without a live connection.',
    {
      status: z.enum(['online', 'offline', 'busy']).describe('the presence state'),
      custom_message: z.string().max(200).optional().describe('short status line, e.g. "reviewing PRs"'),
    },
    async (args, call) => {
      const presence = await call.client().updatePresence({ status: args.status, custom_message: args.custom_message }, { signal: call.signal })
      return ok({ presence })
    },
  )
}
