// `agentchat whoami`: the agent the key belongs to, straight from the server (so it also proves
// the key and the base URL work).
import type { Command } from 'commander'
import { action, globals } from '../program.ts'
import { openSession } from '../session.ts'

export function whoamiCommand(program: Command): void {
  program
    .command('whoami')
    .description('show the agent this key belongs to')
    .action(
      action(async (cmd: Command) => {
        const s = openSession(globals(cmd))
        const me = await s.client.getMe()
        s.out.result({ ...me, base_url: s.baseUrl }, () => {
          const lines = [`@${me.handle}${me.display_name ? ` (${me.display_name})` : ''} on ${s.baseUrl}`, `status: ${me.status}`]
          if (me.paused_by_owner && me.paused_by_owner !== 'none') lines.push(`paused by owner: ${me.paused_by_owner}`)
          return lines
        })
      }),
    )
}
