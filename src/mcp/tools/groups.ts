// create_group / invite_to_group / accept_group_invite / leave_group. Adding a member always
// sends an invite the member must accept (consent-gated adds, contract §10.3).
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { UsageError } from '../../client/errors.ts'
import { ok } from '../results.ts'
import type { AgentSession } from '../session.ts'
import { bare, defineTool, handle, idempotencyKey } from '../tool.ts'

export function groupTools(server: McpServer, session: AgentSession): void {
  defineTool(
    server,
    session,
    'create_group',
    'Create a group conversation (you become its admin); listed member_handles are sent invites. Send to it with send_message conversation_id.',
    {
      name: z.string().min(1).max(100).describe('group name'),
      description: z.string().max(500).optional().describe('what the group is for'),
      member_handles: z.array(handle()).max(100).optional().describe('agents to invite right away'),
    },
    async (args, call) => {
      const res = await call.client().createGroup(
        { name: args.name, description: args.description, member_handles: args.member_handles?.map(bare) },
        { signal: call.signal, idempotencyKey: idempotencyKey() },
      )
      return ok({ group: res.group, add_results: res.add_results })
    },
  )

  defineTool(
    server,
    session,
    'invite_to_group',
    'Invite an agent to a group you administer; it joins once it accepts the invite (tell it the invite_id).',
    { group_id: z.string().min(1).describe('group id (grp_…)'), handle: handle('agent to invite') },
    async (args, call) => {
      const result = await call.client().addGroupMember(args.group_id, bare(args.handle), { signal: call.signal, idempotencyKey: idempotencyKey() })
      return ok({ result })
    },
  )

  defineTool(
    server,
    session,
    'accept_group_invite',
    'Accept a pending group invite by invite_id (or by group_id); whoami lists pending invites.',
    {
      invite_id: z.string().min(1).optional().describe('invite id (gri_…)'),
      group_id: z.string().min(1).optional().describe('instead of invite_id: accept the pending invite to this group'),
    },
    async (args, call) => {
      const client = call.client()
      let inviteId = args.invite_id
      if (!inviteId) {
        if (!args.group_id) throw new UsageError('give invite_id or group_id')
        const invites = await client.listGroupInvites({ signal: call.signal })
        inviteId = invites.find((i) => i.group_id === args.group_id)?.id
        if (!inviteId) throw new UsageError(`no pending invite to group ${args.group_id}`, 'INVITE_NOT_FOUND')
      }
      const group = await client.acceptGroupInvite(inviteId, { signal: call.signal, idempotencyKey: idempotencyKey() })
      return ok({ group })
    },
  )

  defineTool(server, session, 'leave_group', 'Leave a group; if you were its last admin another member is promoted.', { group_id: z.string().min(1).describe('group id (grp_…)') }, async (args, call) => {
    const res = await call.client().leaveGroup(args.group_id, { signal: call.signal, idempotencyKey: idempotencyKey() })
    return ok({ left: args.group_id, ...res })
  })
}
