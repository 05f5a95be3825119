// `agentchat register`: the two-step email registration. The start prints the pending id and
// remembers it (pending.json next to the config) so `register --code 123456` can finish without
// retyping it; `register verify <pending_id> <code>` is the explicit form. Success stores
// {base_url, handle, api_key} in the config file (0600): the key is shown by the server only once.
import { AgentChatClient } from 'agentchatme'
import type { Command } from 'commander'
import { rmSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { UsageError } from '../../client/errors.ts'
import { configPath, writeConfig, writeFileAtomic } from '../config.ts'
import { makeOutput } from '../output.ts'
import { action, globals } from '../program.ts'
import { IDENTITY, resolveBaseUrl, type GlobalOptions } from '../session.ts'

interface Pending {
  pending_id: string
  handle: string
  base_url: string
}

const pendingPath = () => join(dirname(configPath()), 'pending.json')

function readPending(): Pending | undefined {
  try {
    return JSON.parse(readFileSync(pendingPath(), 'utf8')) as Pending
  } catch {
    return undefined
  }
}

async function verify(g: GlobalOptions, pendingId: string, code: string, pending?: Pending): Promise<void> {
  const out = makeOutput(Boolean(g.json))
  // The server the registration was started on, unless told otherwise.
  const baseUrl = g.baseUrl || !pending ? resolveBaseUrl(g) : pending.base_url
  const { agent, apiKey } = await AgentChatClient.verify(pendingId, code, { baseUrl, clientIdentity: IDENTITY })
  const handle = String(agent.handle ?? pending?.handle ?? '')
  const path = configPath()
  writeConfig({ base_url: baseUrl, handle, api_key: apiKey }, path)
  if (pending) rmSync(pendingPath(), { force: true })
  out.result({ handle, base_url: baseUrl, config_path: path, agent }, () => [`registered @${handle} on ${baseUrl}`, `API key stored in ${path} (mode 0600)`])
}

export function registerCommand(program: Command): void {
  const reg = program
    .command('register')
    .description('register an agent: start with --email and --handle, then finish with --code (or `register verify`)')
    .option('--email <email>', 'address the 6-digit code is mailed to')
    .option('--handle <handle>', 'the permanent handle (3–30 lowercase letters, digits, single hyphens)')
    .option('--display-name <name>', 'optional display name')
    .option('--description <text>', 'optional description')
    .option('--code <code>', 'the emailed code: finishes the registration started last (or --pending-id)')
    .option('--pending-id <id>', 'with --code: the pending id to verify')
    .action(
      action(async (cmd: Command) => {
        const g = globals(cmd)
        const o = cmd.opts() as { email?: string; handle?: string; displayName?: string; description?: string; code?: string; pendingId?: string }
        if (o.code) {
          const pending = readPending()
          const id = o.pendingId ?? pending?.pending_id
          if (!id) throw new UsageError('no registration in progress: pass --pending-id, or start with --email and --handle')
          await verify(g, id, o.code, o.pendingId && o.pendingId !== pending?.pending_id ? undefined : pending)
          return
        }
        if (!o.email || !o.handle) throw new UsageError('register needs --email and --handle (or --code to finish)')
        const baseUrl = resolveBaseUrl(g)
        const handle = o.handle.replace(/^@/, '')
        const res = await AgentChatClient.register({
          baseUrl,
          clientIdentity: IDENTITY,
          email: o.email,
          handle,
          display_name: o.displayName,
          description: o.description,
        })
        writeFileAtomic(pendingPath(), JSON.stringify({ pending_id: res.pending_id, handle, base_url: baseUrl } satisfies Pending) + '\n', 0o600)
        makeOutput(Boolean(g.json)).result({ pending_id: res.pending_id, message: res.message, handle, base_url: baseUrl }, () => [
          `pending ${res.pending_id}: ${res.message}`,
          `finish with: agentchat register --code <6-digit code>   (or: agentchat register verify ${res.pending_id} <code>)`,
        ])
      }),
    )
  reg
    .command('verify <pending_id> <code>')
    .description('finish a registration with the emailed code; stores the API key')
    .action(
      action(async (cmd: Command, pendingId: string, code: string) => {
        const pending = readPending()
        await verify(globals(cmd), pendingId, code, pending?.pending_id === pendingId ? pending : undefined)
      }),
    )
}
