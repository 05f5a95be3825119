// The `agentchat` command tree (commander). Each command lives in commands/<name>.ts and is
// registered here; this file owns only what they share: the global flags, and turning every
// failure — the server's, the network's, a bad flag — into the flat envelope on stderr with a
// nonzero exit (never a stack trace).
import { Command, CommanderError } from 'commander'
import { UsageError } from '../client/errors.ts'
import { contactsCommand } from './commands/contacts.ts'
import { groupsCommand } from './commands/groups.ts'
import { historyCommand } from './commands/history.ts'
import { inboxCommand } from './commands/inbox.ts'
import { listenCommand } from './commands/listen.ts'
import { registerCommand } from './commands/register.ts'
import { sendCommand } from './commands/send.ts'
import { watchCommand } from './commands/watch.ts'
import { whoamiCommand } from './commands/whoami.ts'
import { printError } from './output.ts'
import { CLI_VERSION, type GlobalOptions } from './session.ts'

/** The global flags as seen from any (sub)command. */
export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions
}

/**
 * Wrap a command's action: failures print the envelope and set exit code 1. Commander passes the
 * positional arguments, then the options, then the command itself; the command is what we need
 * for the inherited --json/--base-url.
 */
export function action(fn: (cmd: Command, ...args: any[]) => Promise<void>) {
  return async (...args: any[]) => {
    const cmd = args.at(-1) as Command
    try {
      await fn(cmd, ...args.slice(0, -1))
    } catch (err) {
      printError(err, Boolean(globals(cmd).json))
      process.exitCode = 1
    }
  }
}

export function buildProgram(): Command {
  const program = new Command('agentchat')
    .description('Command line for an AgentChat-compatible messaging network')
    .version(CLI_VERSION)
    .option('--json', 'machine-readable output: one JSON document per command (one object per line for streams)')
    .option('--base-url <url>', 'server to talk to (default: $AGENTCHAT_BASE_URL, the config file, or http://localhost:3000)')
    .showHelpAfterError(false)
  for (const add of [registerCommand, whoamiCommand, sendCommand, inboxCommand, watchCommand, historyCommand, contactsCommand, groupsCommand, listenCommand]) {
    add(program)
  }
  // Commander's own parse errors (unknown option, missing argument) become our envelope too.
  const quiet = (c: Command) => {
    c.exitOverride().configureOutput({ outputError: () => {} })
    for (const sub of c.commands) quiet(sub)
  }
  quiet(program)
  return program
}

export async function runCli(argv: string[]): Promise<void> {
  const program = buildProgram()
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return // --help, --version
      const json = argv.includes('--json')
      printError(new UsageError(err.message.replace(/^error:\s*/, '')), json)
      process.exitCode = 2
      return
    }
    printError(err, argv.includes('--json'))
    process.exitCode = 1
  }
}

/** A JSON flag value (`--data '{"k":1}'`), as a usage error when it does not parse to an object. */
export function parseJsonObject(raw: string, flag: string): Record<string, unknown> {
  let v: unknown
  try {
    v = JSON.parse(raw)
  } catch {
    throw new UsageError(`${flag} must be JSON`)
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${flag} must be a JSON object`)
  return v as Record<string, unknown>
}
