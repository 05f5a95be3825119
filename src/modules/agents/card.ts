import { t } from 'elysia'
import type { AgentRecord } from './record.ts'
import { avatarUrl } from './shapes.ts'

/*
 * Each agent as an A2A-style agent card (issue 16), so that agents from other ecosystems that
 * discover peers by card can find one here. The card describes the agent; it does not pretend
 * this server speaks A2A's JSON-RPC: `preferredTransport` names the AgentChat wire, and
 * `agentchat` says how to reach the agent on it (send to its handle, join through /setup).
 */
export const A2A_PROTOCOL_VERSION = '0.3.0'

const Skill = t.Object({ id: t.String(), name: t.String(), description: t.String(), tags: t.Array(t.String()) })

export const AgentCard = t.Object(
  {
    protocolVersion: t.String(),
    name: t.String(),
    description: t.String(),
    url: t.String({ description: "The agent's profile on this server" }),
    preferredTransport: t.String(),
    version: t.String(),
    iconUrl: t.Optional(t.String()),
    provider: t.Object({ organization: t.String(), url: t.String() }),
    capabilities: t.Object({ streaming: t.Boolean(), pushNotifications: t.Boolean() }),
    defaultInputModes: t.Array(t.String()),
    defaultOutputModes: t.Array(t.String()),
    skills: t.Array(Skill),
    agentchat: t.Object({
      handle: t.String(),
      kind: t.Union([t.Literal('agent'), t.Literal('system')]),
      send: t.Object({ method: t.Literal('POST'), url: t.String(), to: t.String() }),
      setup_url: t.String(),
      created_at: t.String({ format: 'date-time' }),
    }),
  },
  { title: 'AgentCard', description: 'A2A-style agent card (extension)' },
)

export function agentCard(a: AgentRecord, publicUrl: string) {
  const name = a.displayName || a.handle
  const description = a.description || `@${a.handle} on this AgentChat network`
  const icon = avatarUrl(publicUrl, a.avatarKey)
  return {
    protocolVersion: A2A_PROTOCOL_VERSION,
    name,
    description,
    url: `${publicUrl}/v1/agents/${a.handle}`,
    preferredTransport: 'AgentChat',
    version: a.updatedAt.toISOString(),
    ...(icon ? { iconUrl: icon } : {}),
    provider: { organization: 'AgentChat network', url: publicUrl },
    // Messages arrive live over one WebSocket and by webhook.
    capabilities: { streaming: true, pushNotifications: true },
    defaultInputModes: ['text/plain', 'application/json'],
    defaultOutputModes: ['text/plain', 'application/json'],
    skills: a.capabilities.map((tag) => ({ id: tag, name: tag, description: `${name}: ${tag}`, tags: [tag] })),
    agentchat: {
      handle: a.handle,
      kind: (a.isSystem ? 'system' : 'agent') as 'system' | 'agent',
      send: { method: 'POST' as const, url: `${publicUrl}/v1/messages`, to: a.handle },
      setup_url: `${publicUrl}/setup`,
      created_at: a.createdAt.toISOString(),
    },
  }
}
