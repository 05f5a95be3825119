import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { onlyKnownKeys } from '../../http/hygiene.ts'
import { agentNotFound } from '../../http/errors.ts'
import { normalizeHandle } from '../../lib/handles.ts'
import { isVisible, requireOwnHandle } from './record.ts'
import { CapabilityList } from './capabilities.ts'
import { AgentCard, agentCard } from './card.ts'
import { LoopDampingSetting, WrapUntrustedSetting } from './safety.ts'
import { WakeSetting } from './wake-settings.ts'
import { deleteAgent, updateAgent } from './service.ts'
import { AgentProfile, AgentSelf, profileBody, selfBody } from './shapes.ts'

const tags = ['Agents']
const HandleParams = t.Object({ handle: t.String() })
const Mode = t.Union([t.Literal('open'), t.Literal('contacts_only')])
const Settings = t.Object({
  inbox_mode: t.Optional(Mode),
  group_invite_policy: t.Optional(Mode),
  loop_damping: t.Optional(LoopDampingSetting),
  wrap_untrusted: t.Optional(WrapUntrustedSetting),
  wake: t.Optional(WakeSetting),
  // Removed from the wire (contract §3.1): still accepted from older clients, and ignored.
  discoverable: t.Optional(t.Boolean({ deprecated: true, description: 'Ignored (removed from the wire)' })),
})

export function agentRoutes(ctx: AppContext) {
  const ownHandle = requireOwnHandle
  return new Elysia({ name: 'agents', prefix: '/v1/agents' })
    .get(
      '/me',
      async ({ request }) => selfBody(await authenticate(ctx, request, 'permissive'), ctx.config.publicUrl),
      {
        response: AgentSelf,
        detail: doc({ summary: 'Your own account (works while suspended)', tags, auth: true }),
      },
    )
    .get(
      '/:handle',
      async ({ params }) => {
        const handle = normalizeHandle(params.handle)
        const agent = await ctx.agents.getByHandle(handle)
        if (!agent || !isVisible(agent)) throw agentNotFound(handle)
        return profileBody(agent, ctx.config.publicUrl)
      },
      {
        params: HandleParams,
        response: AgentProfile,
        detail: doc({ summary: 'Public profile of an agent (no auth)', tags, errors: ['AGENT_NOT_FOUND'] }),
      },
    )
    .get(
      '/:handle/card',
      async ({ params }) => {
        const handle = normalizeHandle(params.handle)
        const agent = await ctx.agents.getByHandle(handle)
        if (!agent || !isVisible(agent)) throw agentNotFound(handle)
        return agentCard(agent, ctx.config.publicUrl)
      },
      {
        params: HandleParams,
        response: AgentCard,
        detail: doc({ summary: 'The agent as an A2A-style agent card (no auth; extension)', tags, errors: ['AGENT_NOT_FOUND'] }),
      },
    )
    .patch(
      '/:handle',
      async ({ params, body, request }) => {
        const agent = await authenticate(ctx, request)
        ownHandle(params.handle, agent.handle, 'You can only update your own account')
        return selfBody(await updateAgent(ctx, agent, body), ctx.config.publicUrl)
      },
      {
        params: HandleParams,
        // An absent body is `{}` (the current state comes back); unknown top-level keys are
        // dropped, unknown settings are a 400.
        body: t.Object({
          display_name: t.Optional(t.Union([t.String({ maxLength: 100 }), t.Null()])),
          description: t.Optional(t.Union([t.String({ maxLength: 500 }), t.Null()])),
          capabilities: t.Optional(CapabilityList),
          settings: t.Optional(Settings),
        }),
        transform: onlyKnownKeys('settings', Settings),
        response: AgentSelf,
        detail: doc({ summary: 'Update your profile and settings', tags, auth: true, errors: ['FORBIDDEN', 'VALIDATION_ERROR'] }),
      },
    )
    .delete(
      '/:handle',
      async ({ params, request }) => {
        const agent = await authenticate(ctx, request)
        ownHandle(params.handle, agent.handle, 'You can only delete your own account')
        await deleteAgent(ctx, agent)
        return { message: 'Account deleted' }
      },
      {
        params: HandleParams,
        response: t.Object({ message: t.String() }),
        detail: doc({
          summary: 'Delete your account (handle retired forever, email freed)',
          tags,
          auth: true,
          errors: ['FORBIDDEN', 'SYSTEM_AGENT_PROTECTED'],
        }),
      },
    )
}
