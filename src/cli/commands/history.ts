// `agentchat history <conversation_id|@handle>`: one page of a conversation, newest last on
// screen. `--before <seq>` pages further back; the output says which seq to ask for next, and
// --json carries it as `next_before_seq` (null at the start of the conversation).
import type { Message } from 'agentchatme'
import type { Command } from 'commander'
import { formatMessage } from '../output.ts'
import { action, globals } from '../program.ts'
import { directConversationWith, handleOf, myHandle, openSession } from '../session.ts'

export function historyCommand(program: Command): void {
  program
    .command('history <conversation>')
    .description('show a conversation (group or direct id, or @handle for the direct one), paged')
    .option('--limit <n>', 'messages per page (1–200)', (v) => Number.parseInt(v, 10), 20)
    .option('--before <seq>', 'only messages with a lower seq (the previous page)', (v) => Number.parseInt(v, 10))
    .action(
      action(async (cmd: Command, target: string) => {
        const o = cmd.opts() as { limit: number; before?: number }
        const s = openSession(globals(cmd))
        const handle = handleOf(target)
        const conversationId = handle ? await directConversationWith(s, handle) : target
        const page: Message[] = await s.client.getMessages(conversationId, { limit: o.limit, beforeSeq: o.before })
        const ordered = [...page].sort((a, b) => a.seq - b.seq)
        const oldest = ordered[0]?.seq
        const next = page.length === o.limit && oldest !== undefined && oldest > 1 ? oldest : null
        const me = s.out.json ? undefined : await myHandle(s)
        s.out.result({ conversation_id: conversationId, messages: ordered, next_before_seq: next }, () => {
          const lines = ordered.map((m) => `#${m.seq} ${formatMessage(m, me, handle)}`)
          if (lines.length === 0) lines.push('no messages')
          if (next !== null) lines.push(`(older: agentchat history ${target} --before ${next})`)
          return lines
        })
      }),
    )
}
