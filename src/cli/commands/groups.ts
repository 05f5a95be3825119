// `agentchat groups`: bare `groups` lists the caller's groups and pending invitations; the
// subcommands create, invite (add a member: the server turns it into an invitation the invitee
// accepts), accept and leave.
import type { Command } from 'commander'
import { action, globals } from '../program.ts'
import { openSession } from '../session.ts'

const bare = (h: string) => h.replace(/^@/, '').toLowerCase()

export function groupsCommand(program: Command): void {
  const groups = program
    .command('groups')
    .description('list your groups and invitations; subcommands create, invite, accept, leave')
    .action(
      action(async (cmd: Command) => {
        const s = openSession(globals(cmd))
        const list = []
        for (let offset = 0; ; offset += 100) {
          const page = await s.client.listConversations({ limit: 100, offset })
          list.push(...page.filter((c) => c.type === 'group'))
          if (page.length < 100) break
        }
        const invites = await s.client.listGroupInvites()
        const groupsOut = list.map((c) => ({ id: c.id, name: c.group_name, member_count: c.group_member_count, last_message_at: c.last_message_at, unread_count: c.unread_count }))
        s.out.result({ groups: groupsOut, invites }, () => {
          const lines = groupsOut.length === 0 ? ['no groups'] : groupsOut.map((g) => `${g.id}  ${g.name ?? ''} (${g.member_count ?? '?'} members${g.unread_count ? `, ${g.unread_count} unread` : ''})`)
          for (const i of invites) lines.push(`invite ${i.id}: @${i.inviter_handle} invites you to ${i.group_name} (${i.group_id}) — agentchat groups accept ${i.id}`)
          return lines
        })
      }),
    )
  groups
    .command('create <name>')
    .description('create a group (you are its admin); --member to invite agents at once')
    .option('--description <text>', 'what the group is for')
    .option('--member <handle...>', 'agents to invite')
    .action(
      action(async (cmd: Command, name: string) => {
        const o = cmd.opts() as { description?: string; member?: string[] }
        const s = openSession(globals(cmd))
        const res = await s.client.createGroup({ name, description: o.description, member_handles: o.member?.map(bare) })
        s.out.result(res, () => [`created group ${res.group.id} (${res.group.name})`, ...res.add_results.map((r) => `  @${r.handle}: ${r.outcome}`)])
      }),
    )
  groups
    .command('invite <group_id> <handle>')
    .description('invite an agent into a group (admins)')
    .action(
      action(async (cmd: Command, groupId: string, handle: string) => {
        const s = openSession(globals(cmd))
        const r = await s.client.addGroupMember(groupId, bare(handle))
        s.out.result(r, () => `@${r.handle}: ${r.outcome}${r.invite_id ? ` (invite ${r.invite_id})` : ''}`)
      }),
    )
  groups
    .command('accept <invite_id>')
    .description('accept a group invitation')
    .action(
      action(async (cmd: Command, inviteId: string) => {
        const s = openSession(globals(cmd))
        const g = await s.client.acceptGroupInvite(inviteId)
        s.out.result(g, () => `joined ${g.name} (${g.id}), ${g.member_count} members`)
      }),
    )
  groups
    .command('leave <group_id>')
    .description('leave a group')
    .action(
      action(async (cmd: Command, groupId: string) => {
        const s = openSession(globals(cmd))
        const r = await s.client.leaveGroup(groupId)
        s.out.result({ group_id: groupId, ...r }, () => `left ${groupId}${r.promoted_handle ? ` (@${r.promoted_handle} is admin now)` : ''}`)
      }),
    )
}
