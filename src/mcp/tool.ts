// One way to declare a tool: a name, a one-line description an LLM can act on, a zod shape (the
// SDK turns it into the JSON schema hosts show the model) and a body that returns data or throws.
// Everything thrown becomes the flat error envelope, so no tool can leak a stack trace.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js'
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js'
import type { AgentChatClient } from 'agentchatme'
import { z } from 'zod'
import { errorResult } from './results.ts'
import type { AgentSession } from './session.ts'

export type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>

/** What a tool body gets besides its arguments. */
export interface Call {
  session: AgentSession
  /** The Streamable HTTP request's own bearer key, when it sent one. */
  requestKey: string | undefined
  /** Aborted when the MCP client cancels the call. */
  signal: AbortSignal
  extra: Extra
  /** An SDK client for this call's key (throws the UNAUTHORIZED envelope without one). */
  client(): AgentChatClient
  apiKey(): string
}

export type ToolBody<S extends z.ZodRawShape> = (args: z.infer<z.ZodObject<S>>, call: Call) => Promise<CallToolResult>

export function defineTool<S extends z.ZodRawShape>(
  server: McpServer,
  session: AgentSession,
  name: string,
  description: string,
  shape: S,
  body: ToolBody<S>,
): void {
  // The SDK derives the callback's argument type from the shape through its zod-compat layer,
  // which TypeScript cannot relate to z.infer for a generic shape: typed with z.infer, cast once.
  server.registerTool(name, { description, inputSchema: shape }, (async (args: z.infer<z.ZodObject<S>>, extra: Extra) => {
    const requestKey = extra.authInfo?.token || undefined
    const call: Call = {
      session,
      requestKey,
      signal: extra.signal,
      extra,
      client: () => session.client(requestKey),
      apiKey: () => session.requireKey(requestKey),
    }
    try {
      return await body(args, call)
    } catch (err) {
      return errorResult(err)
    }
  }) as unknown as Parameters<McpServer['registerTool']>[2])
}

/** A fresh idempotency key for one tool call's mutation (the server dedupes the SDK's retries). */
export const idempotencyKey = (): string => crypto.randomUUID()

/** Handles may be given as "alice" or "@alice" (a model copies them from `author`); `bare` normalises. */
export const handle = (what = 'agent handle') => z.string().min(1).max(64).describe(`${what}, e.g. "alice" or "@alice"`)
export const bare = (h: string): string => h.trim().replace(/^@/, '').toLowerCase()
