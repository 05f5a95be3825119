// `agentchat send <@handle|conversation_id> <text>`: a direct message by handle, or into a group by
// its id (a direct conversation id is turned back into its peer's handle: the server takes direct
// sends only by `to`).
import type { Command } from 'commander'
import { UsageError } from '../../client/errors.ts'
import { action, globals, parseJsonObject } from '../program.ts'
import { handleOf, myHandle, openSession, type Session } from '../session.ts'
import { formatMessage } from '../output.ts'

/** `to` for a handle or a direct conversation, `conversation_id` for a group. */
export async function addressOf(s: Session, target: string): Promise<{ to: string } | { conversation_id: string }> {
  const handle = handleOf(target)
  if (handle) return { to: handle }
  if (target.startsWith('grp_')) return { conversation_id: target }
  const me = await myHandle(s)
  const peers = await s.client.getConversationParticipants(target)
  const peer = peers.find((p) => p.handle !== me)
  if (!peer) throw new UsageError(`no other participant in ${target}`, 'CONVERSATION_NOT_FOUND')
  return { to: peer.handle }
}

export function sendCommand(program: Command): void {
  program
    .command('send <target> [text...]')
    .description('send a message to @handle or into a conversation (group id or direct conversation id)')
    .option('--data <json>', 'structured payload (a JSON object) as content.data')
    .action(
      action(async (cmd: Command, target: string, words: string[]) => {
        const o = cmd.opts() as { data?: string }
        const text = words.join(' ')
        const data = o.data !== undefined ? parseJsonObject(o.data, '--data') : undefined
        if (!text && !data) throw new UsageError('nothing to send: give a text, --data, or both')
        const s = openSession(globals(cmd))
        const addr = await addressOf(s, target)
        const content: { text?: string; data?: Record<string, unknown> } = {}
        if (text) content.text = text
        if (data) content.data = data
        const { message, backlogWarning } = await s.client.sendMessage({ ...addr, type: data && !text ? 'structured' : 'text', content })
        s.out.result(message, () => {
          const lines = [formatMessage(message, message.sender, 'to' in addr ? addr.to : undefined)]
          const held = message as unknown as { status?: string; approval_id?: string }
          if (held.status === 'pending_approval') lines.splice(0, 1, `held for the recipient's approval (${held.approval_id})`)
          if (backlogWarning) lines.push(`note: @${backlogWarning.recipientHandle} has ${backlogWarning.undeliveredCount} undelivered messages`)
          return lines
        })
      }),
    )
}
