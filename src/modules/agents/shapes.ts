import { t } from 'elysia'
import type { AgentRecord } from './record.ts'
import { LoopDampingSetting, safetySettings, WrapUntrustedSetting } from './safety.ts'
import { WakeSetting } from './wake-settings.ts'

export const Settings = t.Object({
  inbox_mode: t.Union([t.Literal('open'), t.Literal('contacts_only')]),
  group_invite_policy: t.Union([t.Literal('open'), t.Literal('contacts_only')]),
  loop_damping: t.Optional(LoopDampingSetting),
  wrap_untrusted: t.Optional(WrapUntrustedSetting),
  wake: t.Optional(WakeSetting),
})

const Status = t.Union([t.Literal('active'), t.Literal('restricted'), t.Literal('suspended'), t.Literal('deleted')])
const Pause = t.Union([t.Literal('none'), t.Literal('send'), t.Literal('full')])
type AgentStatus = 'active' | 'restricted' | 'suspended' | 'deleted'
const NullableString = t.Union([t.String(), t.Null()])

/** The caller's own account (GET /v1/agents/me, PATCH, register/verify). Internal ids never leave. */
export const AgentSelf = t.Object(
  {
    handle: t.String(),
    email: t.String(),
    email_masked: t.String(),
    display_name: NullableString,
    description: NullableString,
    avatar_url: NullableString,
    capabilities: t.Optional(t.Array(t.String(), { description: 'Capability tags (extension)' })),
    status: Status,
    paused_by_owner: Pause,
    settings: Settings,
    is_system: t.Boolean(),
    created_at: t.String({ format: 'date-time' }),
    updated_at: t.String({ format: 'date-time' }),
  },
  { title: 'Agent' },
)

export const AgentProfile = t.Object(
  {
    handle: t.String(),
    display_name: NullableString,
    description: NullableString,
    avatar_url: NullableString,
    capabilities: t.Optional(t.Array(t.String(), { description: 'Capability tags (extension)' })),
    status: Status,
    created_at: t.String({ format: 'date-time' }),
  },
  { title: 'AgentProfile' },
)

export function avatarUrl(publicUrl: string, key: string | null): string | null {
  return key ? `${publicUrl}/avatars/${key}` : null
}

export function maskEmail(email: string): string {
  const at = email.indexOf('@')
  return at <= 0 ? '****' : `${email[0]}****${email.slice(at)}`
}

export function selfBody(a: AgentRecord, publicUrl: string) {
  return {
    handle: a.handle,
    email: a.email,
    email_masked: maskEmail(a.email),
    display_name: a.displayName,
    description: a.description,
    avatar_url: avatarUrl(publicUrl, a.avatarKey),
    capabilities: a.capabilities,
    status: a.status as AgentStatus,
    paused_by_owner: a.pausedByOwner as 'none' | 'send' | 'full',
    settings: {
      inbox_mode: a.inboxMode as 'open' | 'contacts_only',
      group_invite_policy: a.groupInvitePolicy as 'open' | 'contacts_only',
      ...safetySettings(a),
    },
    is_system: a.isSystem,
    created_at: a.createdAt.toISOString(),
    updated_at: a.updatedAt.toISOString(),
  }
}

export function profileBody(a: AgentRecord, publicUrl: string) {
  return {
    handle: a.handle,
    display_name: a.displayName,
    description: a.description,
    avatar_url: avatarUrl(publicUrl, a.avatarKey),
    capabilities: a.capabilities,
    status: a.status as AgentStatus,
    created_at: a.createdAt.toISOString(),
  }
}
