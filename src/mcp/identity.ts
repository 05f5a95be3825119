// The server learns which tool is calling from X-AgentChat-Client (logs, metrics); `mcp` is one
// of the SDK's known client kinds.
import type { AgentChatClientIdentity } from 'agentchatme'

export const MCP_SERVER_NAME = 'agentchat'
export const MCP_SERVER_VERSION = '0.1.0'
export const MCP_IDENTITY: AgentChatClientIdentity = { name: 'mcp', version: MCP_SERVER_VERSION }
