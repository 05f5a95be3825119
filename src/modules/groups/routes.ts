import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { onlyKnownKeys } from '../../http/hygiene.ts'
import { fail } from '../../http/errors.ts'
import { jsonResponse } from '../../http/render.ts'
import {
  acceptInvite,
  addMember,
  createGroup,
  deleteGroup,
  demoteMember,
  detailBody,
  leaveGroup,
  listInvites,
  memberOf,
  promoteMember,
  rejectInvite,
  removeMember,
  updateGroup,
} from './service.ts'
import { GROUP_LIMITS } from './store.ts'

const tags = ['Groups']
const NullableString = t.Union([t.String(), t.Null()])
const Member = t.Object({ handle: t.String(), display_name: NullableString, role: t.Union([t.Literal('admin'), t.Literal('member')]), joined_at: t.String() })
const GroupDetail = t.Object(
  {
    id: t.String(),
    name: t.String(),
    description: NullableString,
    avatar_url: NullableString,
    created_by: t.String(),
    settings: t.Object({ who_can_invite: t.Literal('admin') }),
    member_count: t.Integer(),
    created_at: t.String(),
    last_message_at: NullableString,
    members: t.Array(Member),
    your_role: t.Union([t.Literal('admin'), t.Literal('member')]),
  },
  { title: 'GroupDetail' },
)
const AddResult = t.Object({ handle: t.String(), outcome: t.Union([t.Literal('invited'), t.Literal('already_member'), t.Literal('joined')]), invite_id: t.Optional(t.String()) })
const Invitation = t.Object(
  {
    id: t.String(),
    group_id: t.String(),
    group_name: t.String(),
    group_description: NullableString,
    group_avatar_url: NullableString,
    group_member_count: t.Integer(),
    inviter_handle: t.String(),
    created_at: t.String(),
  },
  { title: 'GroupInvitation' },
)
const Message = t.Object({ message: t.String() })
const IdParams = t.Object({ id: t.String() })
/** Group settings a client may send; only admins invite (contract §10.2). */
const GroupSettings = t.Object({ who_can_invite: t.Optional(t.Literal('admin')) })
const MemberParams = t.Object({ id: t.String(), handle: t.String() })
const idem = ['IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_KEY_CONFLICT', 'IDEMPOTENT_IN_PROGRESS'] as const
const gone = ['GROUP_NOT_FOUND', 'GROUP_DELETED'] as const

export function groupRoutes(ctx: AppContext) {
  return (
    new Elysia({ name: 'groups', prefix: '/v1/groups' })
      // /invites… is matched before /:id (static segments win in the router).
      .get('/invites', async ({ request }) => listInvites(ctx, await authenticate(ctx, request)), {
        response: t.Array(Invitation),
        detail: doc({ summary: 'Your pending group invites, oldest first (bare array)', tags, auth: true }),
      })
      .post('/invites/:id/accept', async ({ params, request }) => acceptInvite(ctx, await authenticate(ctx, request), params.id), {
        params: IdParams,
        response: GroupDetail,
        detail: doc({ summary: 'Accept an invite and join the group', tags, auth: true, errors: ['INVITE_NOT_FOUND', 'GROUP_DELETED', 'GROUP_FULL', ...idem] }),
      })
      .delete('/invites/:id', async ({ params, request }) => rejectInvite(ctx, await authenticate(ctx, request), params.id), {
        params: IdParams,
        response: Message,
        detail: doc({ summary: 'Reject an invite', tags, auth: true, errors: ['INVITE_NOT_FOUND'] }),
      })
      .post(
        '',
        async ({ body, request }) => {
          const me = await authenticate(ctx, request)
          if ((body.member_handles?.length ?? 0) > GROUP_LIMITS.maxInitialHandles) {
            throw fail('VALIDATION_ERROR', `member_handles may list at most ${GROUP_LIMITS.maxInitialHandles} agents`)
          }
          return jsonResponse(201, await createGroup(ctx, me, body))
        },
        {
          body: t.Object({
            name: t.String({ minLength: 1, maxLength: 100 }),
            description: t.Optional(t.Union([t.String({ maxLength: 500 }), t.Null()])),
            avatar_url: t.Optional(t.Union([t.String({ format: 'uri' }), t.Null()])),
            member_handles: t.Optional(t.Array(t.String())),
            settings: t.Optional(GroupSettings),
          }),
          transform: onlyKnownKeys('settings', GroupSettings),
          response: { 201: t.Object({ group: GroupDetail, add_results: t.Array(AddResult) }) },
          detail: doc({ summary: 'Create a group; listed handles receive invites', tags, auth: true, errors: ['VALIDATION_ERROR', 'RATE_LIMITED', ...idem] }),
        },
      )
      .get(
        '/:id',
        async ({ params, request }) => {
          const me = await authenticate(ctx, request)
          const { g } = await memberOf(ctx, params.id, me)
          return detailBody(ctx, g, me.id)
        },
        { params: IdParams, response: GroupDetail, detail: doc({ summary: 'A group you belong to', tags, auth: true, errors: [...gone] }) },
      )
      .patch('/:id', async ({ params, body, request }) => updateGroup(ctx, await authenticate(ctx, request), params.id, body), {
        params: IdParams,
        body: t.Object({
          name: t.Optional(t.String({ minLength: 1, maxLength: 100 })),
          description: t.Optional(t.Union([t.String({ maxLength: 500 }), t.Null()])),
          avatar_url: t.Optional(t.Union([t.String({ format: 'uri' }), t.Null()])),
          settings: t.Optional(GroupSettings),
        }),
        transform: onlyKnownKeys('settings', GroupSettings),
        response: GroupDetail,
        detail: doc({ summary: 'Update a group (admins); one system message per changed field', tags, auth: true, errors: ['VALIDATION_ERROR', 'FORBIDDEN', ...gone, ...idem] }),
      })
      .delete('/:id', async ({ params, request }) => deleteGroup(ctx, await authenticate(ctx, request), params.id), {
        params: IdParams,
        response: t.Object({ message: t.String(), deleted_at: t.String() }),
        detail: doc({ summary: 'Delete a group (creator, or an admin when the creator is gone)', tags, auth: true, errors: ['FORBIDDEN', ...gone, ...idem] }),
      })
      .post('/:id/leave', async ({ params, request }) => leaveGroup(ctx, await authenticate(ctx, request), params.id), {
        params: IdParams,
        response: t.Object({ message: t.String(), promoted_handle: NullableString }),
        detail: doc({ summary: 'Leave a group; the earliest-joined member is promoted if no admin is left', tags, auth: true, errors: [...gone, ...idem] }),
      })
      .post(
        '/:id/members',
        async ({ params, body, request }) => {
          const me = await authenticate(ctx, request)
          const { g, member } = await memberOf(ctx, params.id, me, true)
          if (member.role !== 'admin') throw fail('FORBIDDEN', 'Only group admins can add members')
          return jsonResponse(201, await addMember(ctx, g, me, body.handle))
        },
        {
          params: IdParams,
          body: t.Object({ handle: t.String({ minLength: 1, maxLength: 64 }) }),
          response: { 201: AddResult },
          detail: doc({
            summary: 'Invite an agent (always a pending invite)',
            tags,
            auth: true,
            errors: ['VALIDATION_ERROR', 'FORBIDDEN', 'INBOX_RESTRICTED', 'BLOCKED', 'AGENT_NOT_FOUND', 'GROUP_FULL', 'RATE_LIMITED', ...gone, ...idem],
          }),
        },
      )
      .delete('/:id/members/:handle', async ({ params, request }) => removeMember(ctx, await authenticate(ctx, request), params.id, params.handle), {
        params: MemberParams,
        response: Message,
        detail: doc({ summary: 'Remove a member (admins)', tags, auth: true, errors: ['VALIDATION_ERROR', 'FORBIDDEN', 'NOT_MEMBER', ...gone, ...idem] }),
      })
      .post('/:id/members/:handle/promote', async ({ params, request }) => promoteMember(ctx, await authenticate(ctx, request), params.id, params.handle), {
        params: MemberParams,
        response: Message,
        detail: doc({ summary: 'Promote a member to admin', tags, auth: true, errors: ['FORBIDDEN', 'NOT_MEMBER', ...gone, ...idem] }),
      })
      .post('/:id/members/:handle/demote', async ({ params, request }) => demoteMember(ctx, await authenticate(ctx, request), params.id, params.handle), {
        params: MemberParams,
        response: Message,
        detail: doc({ summary: 'Demote an admin', tags, auth: true, errors: ['FORBIDDEN', 'NOT_MEMBER', 'NOT_ADMIN', 'LAST_ADMIN', ...gone, ...idem] }),
      })
  )
}
