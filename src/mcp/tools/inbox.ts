// wait_for_messages / sync / ack: the inbox of undelivered messages. Nothing is consumed by
// reading it; `ack` with the last delivery_id marks everything up to it delivered. The wait uses
// the server's long-poll (GET /v1/messages/stream), which the SDK has no method for, so it goes
// through ../raw.ts with the same key and the same error envelope.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { getJson } from '../raw.ts'
import { ok } from '../results.ts'
import type { AgentSession } from '../session.ts'
import { defineTool, type Call } from '../tool.ts'
import { labelMessage, lastDeliveryId, messagesPreface } from '../untrusted.ts'

export const WAIT = { min: 1, max: 60, default: 30 } as const
/** Slack on top of the server's own wait before the request is abandoned (slow network, busy server). */
const WAIT_GRACE_MS = 15_000
/** Progress ticks keep a host that resets its request timeout on progress from giving up on a long wait. */
const PROGRESS_EVERY_MS = 10_000

function inboxResult(rows: Record<string, unknown>[], empty: string, extra: Record<string, unknown> = {}) {
  const messages = rows.map(labelMessage)
  return ok(
    { messages, last_delivery_id: lastDeliveryId(rows), ...extra },
    `${messagesPreface(messages.length, empty)}${messages.length ? ' After handling them, call ack with last_delivery_id.' : ''}`,
  )
}

function startProgress(call: Call, timeoutS: number): () => void {
  const token = call.extra._meta?.progressToken
  if (token === undefined) return () => {}
  const started = Date.now()
  const timer = setInterval(() => {
    const progress = Math.min(timeoutS, Math.round((Date.now() - started) / 1000))
    call.extra
      .sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress, total: timeoutS, message: 'waiting for messages' } })
      .catch(() => {})
  }, PROGRESS_EVERY_MS)
  return () => clearInterval(timer)
}

export function inboxTools(server: McpServer, session: AgentSession): void {
  defineTool(
    server,
    session,
    'wait_for_messages',
    `Wait up to timeout_s seconds (${WAIT.min}–${WAIT.max}) for new messages; returns as soon as any arrive (or at once if some are already waiting), else an empty list.`,
    {
      timeout_s: z.number().int().min(WAIT.min).max(WAIT.max).default(WAIT.default).describe('longest wait in seconds'),
      after: z.string().optional().describe('only messages after this delivery_id (the last_delivery_id of a previous call), to skip ones already seen but not acked'),
      limit: z.number().int().min(1).max(500).optional().describe('most messages to return (default 200)'),
    },
    async (args, call) => {
      const stop = startProgress(call, args.timeout_s)
      try {
        const rows = await getJson<Record<string, unknown>[]>({
          baseUrl: session.baseUrl,
          apiKey: call.apiKey(),
          path: '/v1/messages/stream',
          query: { timeout: args.timeout_s, after: args.after, limit: args.limit },
          signal: call.signal,
          timeoutMs: args.timeout_s * 1000 + WAIT_GRACE_MS,
        })
        return inboxResult(rows, `No new messages within ${args.timeout_s}s.`, { timed_out: rows.length === 0 })
      } finally {
        stop()
      }
    },
  )

  defineTool(
    server,
    session,
    'sync',
    'Fetch undelivered messages (oldest first) without waiting; they stay undelivered until you ack the last_delivery_id.',
    {
      limit: z.number().int().min(1).max(500).optional().describe('most messages to return (default 200)'),
      after: z.string().optional().describe('page forward: the last_delivery_id of the previous page'),
    },
    async (args, call) => {
      const rows = await call.client().sync({ limit: args.limit, after: args.after, signal: call.signal })
      return inboxResult(rows, 'No undelivered messages.')
    },
  )

  defineTool(
    server,
    session,
    'ack',
    'Mark every undelivered message up to and including last_delivery_id as delivered, so sync and wait_for_messages stop returning them.',
    { last_delivery_id: z.string().min(1).describe('the last_delivery_id returned by sync or wait_for_messages') },
    async ({ last_delivery_id }, call) => {
      const res = await call.client().syncAck(last_delivery_id, { signal: call.signal })
      return ok({ acked: res.acked })
    },
  )
}
