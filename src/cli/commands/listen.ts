// `agentchat listen --exec CMD`: the background listener (listener/loop.ts). This file wires the
// flags, finds the state file (default: listen-<handle>.json next to the config), and turns
// SIGTERM/SIGINT into "finish the message in hand, then exit 0".
import type { Command } from 'commander'
import { dirname, join } from 'node:path'
import { UsageError } from '../../client/errors.ts'
import { configPath } from '../config.ts'
import { Backoff } from '../listener/backoff.ts'
import { Listener, retriable } from '../listener/loop.ts'
import { ListenerState } from '../listener/state.ts'
import { action, globals } from '../program.ts'
import { openSession } from '../session.ts'
import { toEnvelope } from '../../client/errors.ts'

const int = (name: string, min: number) => (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer ≥ ${min}`)
  return n
}

export function listenCommand(program: Command): void {
  program
    .command('listen')
    .description('hand each new message to CMD (JSON on stdin) and send what it prints as the reply; survives restarts')
    .requiredOption('--exec <cmd>', 'handler, run with `sh -c` once per message')
    .option('--state <file>', 'state file (default: listen-<handle>.json next to the config file)')
    .option('--max-attempts <n>', 'CMD failures per message before it is skipped (acknowledged without a reply)', int('--max-attempts', 1), 3)
    .option('--cmd-timeout <seconds>', 'kill CMD after this long (counts as a failure)', int('--cmd-timeout', 1), 300)
    .option('--poll-timeout <seconds>', 'long-poll wait per request (1–60)', int('--poll-timeout', 1), 30)
    .option('--max-backoff <seconds>', 'cap of the exponential backoff on errors', int('--max-backoff', 1), 60)
    .option('--include-system', 'also hand group system messages (joins, leaves) to CMD')
    .option('--max-messages <n>', 'exit 0 after handling this many messages', int('--max-messages', 1))
    .action(
      action(async (cmd: Command) => {
        const o = cmd.opts() as {
          exec: string
          state?: string
          maxAttempts: number
          cmdTimeout: number
          pollTimeout: number
          maxBackoff: number
          includeSystem?: boolean
          maxMessages?: number
        }
        if (o.pollTimeout > 60) throw new UsageError('--poll-timeout must be at most 60')
        const s = openSession(globals(cmd))
        // Who we are (to skip our own messages, and to name the state file). A server that is
        // not up yet is waited for with the same backoff as later errors; a bad key ends here.
        const backoff = new Backoff(1000, o.maxBackoff * 1000)
        let me: string | undefined
        while (!me) {
          try {
            me = (await s.client.getMe()).handle
          } catch (err) {
            if (!retriable(err)) throw err
            const ms = backoff.next()
            const env = toEnvelope(err)
            s.out.note(`[listen] ${env.code}: ${env.message}; retrying in ${(ms / 1000).toFixed(1)} s`)
            await Bun.sleep(ms)
          }
        }
        const statePath = o.state ?? join(dirname(configPath()), `listen-${me}.json`)
        const listener = new Listener({
          cmd: o.exec,
          baseUrl: s.baseUrl,
          apiKey: s.apiKey,
          client: s.client,
          me,
          state: ListenerState.load(statePath, me),
          out: s.out,
          maxAttempts: o.maxAttempts,
          cmdTimeoutMs: o.cmdTimeout * 1000,
          pollTimeoutS: o.pollTimeout,
          maxBackoffMs: o.maxBackoff * 1000,
          includeSystem: Boolean(o.includeSystem),
          maxMessages: o.maxMessages,
        })
        const stop = () => listener.stop()
        process.on('SIGINT', stop)
        process.on('SIGTERM', stop)
        try {
          await listener.run()
        } finally {
          process.off('SIGINT', stop)
          process.off('SIGTERM', stop)
        }
      }),
    )
}
