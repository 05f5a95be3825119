// send_message / read_conversation / list_conversations. What other agents wrote comes back
// labelled with its author and under the untrusted-data notice (see ../untrusted.ts).
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { AgentChatClient } from 'agentchatme'
import { z } from 'zod'
import { UsageError } from '../../client/errors.ts'
import { ok } from '../results.ts'
import type { AgentSession } from '../session.ts'
import { bare, defineTool, handle } from '../tool.ts'
import { labelMessage, messagesPreface, PREVIEW_NOTICE } from '../untrusted.ts'

/**
 * The server takes direct messages by recipient (`to`) only; a model that kept a direct
 * conversation's id from read_conversation or list_conversations may pass it instead, so it is
 * resolved to the counterparty here.
 */
async function counterparty(client: AgentChatClient, conversationId: string, signal: AbortSignal): Promise<string> {
  const [me, people] = await Promise.all([client.getMe({ signal }), client.getConversationParticipants(conversationId, { signal })])
  const other = people.find((p) => p.handle !== me.handle)
  if (!other) throw new UsageError(`no counterparty found in conversation ${conversationId}`, 'CONVERSATION_NOT_FOUND')
  return other.handle
}

export function messagingTools(server: McpServer, session: AgentSession): void {
  defineTool(
    server,
    session,
    'send_message',
    'Send a message to an agent (`to`: handle) or into a conversation/group (`conversation_id`), with `text` and optional structured `data`.',
    {
      to: handle('recipient handle for a direct message').optional(),
      conversation_id: z.string().min(1).optional().describe('group id (grp_…) or direct conversation id (conv_…) to send into, instead of `to`'),
      text: z.string().min(1).max(32_000).describe('the message text'),
      data: z.record(z.string(), z.unknown()).optional().describe('optional JSON object sent alongside the text (makes it a structured message)'),
      idempotency_key: z
        .string()
        .regex(/^[A-Za-z0-9_-]{8,128}$/)
        .optional()
        .describe('optional: reuse the same value when retrying the same send so it is delivered only once'),
    },
    async (args, call) => {
      if (Boolean(args.to) === Boolean(args.conversation_id)) throw new UsageError('give exactly one of `to` or `conversation_id`')
      const client = call.client()
      let to = args.to ? bare(args.to) : undefined
      let conversationId = args.conversation_id
      if (conversationId?.startsWith('conv_')) {
        to = await counterparty(client, conversationId, call.signal)
        conversationId = undefined
      }
      // One key per call: it is both the message's client_msg_id (the server's dedup key for sends)
      // and the Idempotency-Key, so the SDK's automatic retries never send twice.
      const key = args.idempotency_key ?? crypto.randomUUID()
      const res = await client.sendMessage(
        {
          ...(to ? { to } : { conversation_id: conversationId! }),
          type: args.data ? 'structured' : 'text',
          content: args.data ? { text: args.text, data: args.data } : { text: args.text },
          client_msg_id: key,
        },
        { idempotencyKey: key, signal: call.signal },
      )
      const m = res.message as unknown as Record<string, unknown>
      // The recipient's contract may hold a direct send for approval (modules/approvals): the
      // server answers 202 with an approval id instead of a message.
      if (typeof m.approval_id === 'string') {
        return ok({ sent: false, held_for_approval: { status: m.status, approval_id: m.approval_id, message_id: m.message_id ?? null } })
      }
      return ok({
        sent: true,
        message: { id: m.id, conversation_id: m.conversation_id, seq: m.seq, type: m.type, status: m.status ?? null, created_at: m.created_at },
        ...(res.backlogWarning ? { backlog_warning: res.backlogWarning } : {}),
      })
    },
  )

  defineTool(
    server,
    session,
    'read_conversation',
    'Read a conversation\'s messages, newest first; page back with before_seq (the smallest seq you have) or forward with after_seq.',
    {
      conversation_id: z.string().min(1).describe('conversation or group id (conv_… / grp_…)'),
      limit: z.number().int().min(1).max(200).default(50).describe('messages per page (1–200)'),
      before_seq: z.number().int().min(0).optional().describe('only messages with seq below this (older page)'),
      after_seq: z.number().int().min(0).optional().describe('only messages with seq above this, oldest first (newer page)'),
    },
    async (args, call) => {
      if (args.before_seq !== undefined && args.after_seq !== undefined) throw new UsageError('before_seq and after_seq are mutually exclusive')
      const rows = await call.client().getMessages(args.conversation_id, {
        limit: args.limit,
        beforeSeq: args.before_seq,
        afterSeq: args.after_seq,
        signal: call.signal,
      })
      const messages = rows.map((r) => labelMessage(r as unknown as Record<string, unknown>))
      const seqs = messages.map((m) => m.seq).filter((s): s is number => s !== null)
      const full = rows.length >= args.limit
      return ok(
        {
          conversation_id: args.conversation_id,
          messages,
          // Where the next page starts, when there may be one.
          next_before_seq: args.after_seq === undefined && full && seqs.length ? Math.min(...seqs) : null,
          next_after_seq: args.after_seq !== undefined && full && seqs.length ? Math.max(...seqs) : null,
        },
        messagesPreface(messages.length, 'No messages in this page.'),
      )
    },
  )

  defineTool(
    server,
    session,
    'list_conversations',
    'List this agent\'s conversations (direct and group), most recent activity first, with unread counts.',
    {
      limit: z.number().int().min(1).max(100).optional().describe('conversations per page'),
      offset: z.number().int().min(0).optional().describe('conversations to skip'),
    },
    async (args, call) => {
      const conversations = await call.client().listConversations({ limit: args.limit, offset: args.offset, signal: call.signal })
      return ok({ conversations }, PREVIEW_NOTICE)
    },
  )
}
