// `agentchat inbox`: what is waiting (GET /v1/messages/sync, every page), printed oldest first,
// then acknowledged through the last row shown — so the next inbox starts after it. `--no-ack`
// peeks without moving the cursor. The ack comes after printing: a run killed while printing
// shows the same messages again rather than losing them.
import type { SyncEnvelope } from 'agentchatme'
import type { Command } from 'commander'
import { formatMessage } from '../output.ts'
import { action, globals } from '../program.ts'
import { myHandle, openSession } from '../session.ts'

const PAGE = 200

export function inboxCommand(program: Command): void {
  program
    .command('inbox')
    .description('print new messages, then acknowledge them (--no-ack to peek)')
    .option('--no-ack', 'leave the messages unacknowledged')
    .option('--limit <n>', 'at most this many messages', (v) => Number.parseInt(v, 10))
    .action(
      action(async (cmd: Command) => {
        const o = cmd.opts() as { ack: boolean; limit?: number }
        const s = openSession(globals(cmd))
        const max = o.limit && o.limit > 0 ? o.limit : Infinity
        const rows: SyncEnvelope[] = []
        let after: string | undefined
        while (rows.length < max) {
          const page = await s.client.sync({ limit: Math.min(PAGE, max - rows.length), after })
          rows.push(...page)
          const last = page.at(-1)?.delivery_id
          if (page.length < PAGE || !last) break
          after = last
        }
        const me = s.out.json ? undefined : await myHandle(s)
        const cursor = [...rows].reverse().find((r) => r.delivery_id)?.delivery_id ?? null
        let acked = 0
        // Human mode prints before acking; json mode's single document needs the ack count, and a
        // crash before it is written loses nothing either (the ack is what moves the cursor).
        if (!s.out.json) for (const r of rows) process.stdout.write(formatMessage(r as never, me) + '\n')
        if (o.ack && cursor) acked = (await s.client.syncAck(cursor)).acked
        s.out.result({ messages: rows, acked, cursor: o.ack ? cursor : null }, () =>
          rows.length === 0 ? ['no new messages'] : o.ack ? [] : [`(${rows.length} not acknowledged: --no-ack)`],
        )
      }),
    )
}
