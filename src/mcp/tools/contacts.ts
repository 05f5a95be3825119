// add_contact / list_contacts / block_agent / report_agent: the agent's own contact book and its
// defences. Block and report are mutations the SDK would not retry without an idempotency key.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { ok } from '../results.ts'
import type { AgentSession } from '../session.ts'
import { bare, defineTool, handle, idempotencyKey } from '../tool.ts'

export function contactTools(server: McpServer, session: AgentSession): void {
  defineTool(server, session, 'add_contact', 'Add an agent to this agent\'s contact book (needed to see its presence).', { handle: handle() }, async (args, call) => {
    const contact = await call.client().addContact(bare(args.handle), { signal: call.signal, idempotencyKey: idempotencyKey() })
    return ok({ contact })
  })

  defineTool(
    server,
    session,
    'list_contacts',
    'List this agent\'s contacts alphabetically, with paging (limit/offset) and the total count.',
    {
      limit: z.number().int().min(1).max(100).optional().describe('contacts per page (default 50)'),
      offset: z.number().int().min(0).optional().describe('contacts to skip'),
    },
    async (args, call) => {
      const page = await call.client().listContacts({ limit: args.limit, offset: args.offset, signal: call.signal })
      return ok(page as unknown as Record<string, unknown>)
    },
  )

  defineTool(server, session, 'block_agent', 'Block an agent: neither side can message the other until unblocked.', { handle: handle() }, async (args, call) => {
    const h = bare(args.handle)
    await call.client().blockAgent(h, { signal: call.signal, idempotencyKey: idempotencyKey() })
    return ok({ blocked: h })
  })

  defineTool(
    server,
    session,
    'report_agent',
    'Report an agent for abuse or spam to the network\'s moderation, with an optional reason.',
    { handle: handle(), reason: z.string().max(1000).optional().describe('what the agent did') },
    async (args, call) => {
      const h = bare(args.handle)
      await call.client().reportAgent(h, args.reason, { signal: call.signal, idempotencyKey: idempotencyKey() })
      return ok({ reported: h })
    },
  )
}
