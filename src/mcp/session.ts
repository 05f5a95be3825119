// Who the MCP server is acting as. One `AgentSession` per MCP session (the single stdio session,
// or one per Streamable HTTP session), so a key adopted by `register_verify` stays with the
// conversation that registered it and never leaks into another HTTP client's session.
import type { AgentChatClient } from 'agentchatme'
import { makeClient, type ClientEnv } from '../client/env.ts'
import { UsageError } from '../client/errors.ts'
import { MCP_IDENTITY } from './identity.ts'

export const NO_KEY_MESSAGE = 'set AGENTCHAT_API_KEY or call register_verify'

export class AgentSession {
  /** The key minted by `register_verify` in this session; it wins over every other source. */
  private adopted: string | undefined
  private readonly clients = new Map<string, AgentChatClient>()

  constructor(readonly env: ClientEnv) {}

  get baseUrl(): string {
    return this.env.baseUrl
  }

  /** After a successful registration the session acts as the new agent from then on. */
  adoptKey(apiKey: string): void {
    this.adopted = apiKey
  }

  /**
   * The key for one tool call: the registered one, else the HTTP request's own bearer key (a host
   * can configure the key per request), else AGENTCHAT_API_KEY.
   */
  keyFor(requestKey?: string): string | undefined {
    return this.adopted ?? requestKey ?? this.env.apiKey
  }

  /** The key, or the UNAUTHORIZED envelope the tool returns when none is configured. */
  requireKey(requestKey?: string): string {
    const key = this.keyFor(requestKey)
    if (!key) throw new UsageError(NO_KEY_MESSAGE, 'UNAUTHORIZED')
    return key
  }

  /** An SDK client for this call's key (cached per key: HTTP sessions may switch keys per request). */
  client(requestKey?: string): AgentChatClient {
    const key = this.requireKey(requestKey)
    let c = this.clients.get(key)
    if (!c) {
      c = makeClient(key, this.env.baseUrl, MCP_IDENTITY)
      this.clients.set(key, c)
    }
    return c
  }
}
