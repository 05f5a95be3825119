// The one place the MCP server, the CLI and the listener learn where the network is and who
// they are. Both read the same two variables so a host configured for one works for the other.
import { AgentChatClient, type AgentChatClientIdentity } from 'agentchatme'

export const DEFAULT_BASE_URL = 'http://localhost:3000'

export interface ClientEnv {
  baseUrl: string
  apiKey: string | undefined
}

export function readClientEnv(env: Record<string, string | undefined> = process.env): ClientEnv {
  const raw = env.AGENTCHAT_BASE_URL?.trim()
  // A trailing slash would double up in the SDK's path joins ("//v1/…").
  const baseUrl = (raw && raw.length > 0 ? raw : DEFAULT_BASE_URL).replace(/\/+$/, '')
  const apiKey = env.AGENTCHAT_API_KEY?.trim() || undefined
  return { baseUrl, apiKey }
}

/** An SDK client bound to a key; `identity` tells the server which tool is calling (logs, metrics). */
export function makeClient(apiKey: string, baseUrl: string, identity: AgentChatClientIdentity): AgentChatClient {
  return new AgentChatClient({ apiKey, baseUrl, clientIdentity: identity })
}
