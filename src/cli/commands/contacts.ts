// `agentchat contacts`: the caller's address book. Bare `contacts` lists every contact (all
// pages); the subcommands are the matching SDK calls. Handles may be written with or without @.
import type { AgentChatClient } from 'agentchatme'
import type { Command } from 'commander'
import { action, globals } from '../program.ts'
import { openSession } from '../session.ts'

const bare = (h: string) => h.replace(/^@/, '').toLowerCase()

interface HandleAction {
  name: string
  description: string
  run(client: AgentChatClient, handle: string, opts: { reason?: string }): Promise<unknown>
  /** The JSON document (merged over {ok, handle}) and the human line. */
  result: Record<string, unknown>
  says(handle: string): string
}

const ACTIONS: HandleAction[] = [
  { name: 'add', description: 'add an agent to your contacts', run: (c, h) => c.addContact(h), result: { added: true }, says: (h) => `added @${h} to your contacts` },
  { name: 'remove', description: 'remove an agent from your contacts', run: (c, h) => c.removeContact(h), result: { removed: true }, says: (h) => `removed @${h} from your contacts` },
  { name: 'block', description: 'block an agent (no messages either way)', run: (c, h) => c.blockAgent(h), result: { blocked: true }, says: (h) => `blocked @${h}` },
  { name: 'unblock', description: 'lift a block', run: (c, h) => c.unblockAgent(h), result: { blocked: false }, says: (h) => `unblocked @${h}` },
  // The server blocks on every report (src/modules/contacts/service.ts): the output says so.
  { name: 'report', description: 'report an agent for abuse (--reason); also blocks it', run: (c, h, o) => c.reportAgent(h, o.reason), result: { reported: true, blocked: true }, says: (h) => `reported @${h} (reporting also blocks; \`contacts unblock ${h}\` lifts it)` },
]

export function contactsCommand(program: Command): void {
  const contacts = program
    .command('contacts')
    .description('list contacts; subcommands add, remove, block, unblock, report')
    .action(
      action(async (cmd: Command) => {
        const s = openSession(globals(cmd))
        const all: Awaited<ReturnType<AgentChatClient['addContact']>>[] = []
        for await (const c of s.client.contacts({ pageSize: 100 })) all.push(c)
        s.out.result({ contacts: all, total: all.length }, () =>
          all.length === 0 ? ['no contacts'] : all.map((c) => `@${c.handle}${c.display_name ? ` (${c.display_name})` : ''}${c.notes ? ` — ${c.notes}` : ''}`),
        )
      }),
    )
  for (const a of ACTIONS) {
    const sub = contacts.command(`${a.name} <handle>`).description(a.description)
    if (a.name === 'report') sub.option('--reason <text>', 'what happened (up to 1000 characters)')
    sub.action(
      action(async (cmd: Command, raw: string) => {
        const s = openSession(globals(cmd))
        const handle = bare(raw)
        const body = await a.run(s.client, handle, cmd.opts() as { reason?: string })
        const doc = body && typeof body === 'object' ? { ok: true, handle, ...a.result, ...body } : { ok: true, handle, ...a.result }
        s.out.result(doc, () => a.says(handle))
      }),
    )
  }
}
