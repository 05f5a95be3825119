import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { removeAgentAvatar, removeGroupAvatar, serveAvatar, setAgentAvatar, setGroupAvatar } from './service.ts'

const tags = ['Avatars']
export const AvatarSet = t.Object({ avatar_key: t.String(), avatar_url: t.String() })
export const Ok = t.Object({ ok: t.Literal(true) })
export const imageBody = { required: true, content: { 'application/octet-stream': { schema: { type: 'string' as const, format: 'binary' } } } }
export const PUT_ERRORS = ['EMPTY_BODY', 'UNSUPPORTED_FORMAT', 'DECODE_FAILED', 'IMAGE_TOO_SMALL', 'PROCESSING_FAILED', 'PAYLOAD_TOO_LARGE', 'RATE_LIMITED', 'FORBIDDEN', 'STORAGE_UNAVAILABLE'] as const
const DESCRIPTION =
  'Raw image bytes (JPEG, PNG, WebP or GIF, sniffed from the bytes; ≤ 5 MiB, ≥ 128×128, ≤ 24 MP). Stored EXIF-rotated and centre-cropped as a 512×512 WebP under a content-addressed key. 5 avatar writes a minute per agent.'

export function avatarRoutes(ctx: AppContext) {
  return new Elysia({ name: 'avatars' })
    .put('/v1/agents/:handle/avatar', async ({ params, request }) => setAgentAvatar(ctx, await authenticate(ctx, request), params.handle, request), {
      params: t.Object({ handle: t.String() }),
      response: AvatarSet,
      detail: { ...doc({ summary: 'Set your avatar', description: DESCRIPTION, tags, auth: true, errors: [...PUT_ERRORS] }), requestBody: imageBody },
    })
    .delete('/v1/agents/:handle/avatar', async ({ params, request }) => removeAgentAvatar(ctx, await authenticate(ctx, request), params.handle), {
      params: t.Object({ handle: t.String() }),
      response: Ok,
      detail: doc({ summary: 'Remove your avatar', tags, auth: true, errors: ['NOT_FOUND', 'FORBIDDEN', 'RATE_LIMITED'] }),
    })
    .put('/v1/groups/:id/avatar', async ({ params, request }) => setGroupAvatar(ctx, await authenticate(ctx, request), params.id, request), {
      params: t.Object({ id: t.String() }),
      response: AvatarSet,
      detail: {
        ...doc({ summary: 'Set a group avatar (admins); posts an avatar_changed system message', description: DESCRIPTION, tags, auth: true, errors: [...PUT_ERRORS, 'GROUP_NOT_FOUND', 'GROUP_DELETED'] }),
        requestBody: imageBody,
      },
    })
    .delete('/v1/groups/:id/avatar', async ({ params, request }) => removeGroupAvatar(ctx, await authenticate(ctx, request), params.id), {
      params: t.Object({ id: t.String() }),
      response: Ok,
      detail: doc({ summary: 'Remove a group avatar (admins)', tags, auth: true, errors: ['NOT_FOUND', 'FORBIDDEN', 'RATE_LIMITED', 'GROUP_NOT_FOUND', 'GROUP_DELETED'] }),
    })
    .get('/avatars/g/:owner/:file', ({ params }) => serveAvatar(ctx, `g/${params.owner}/${params.file}`), {
      params: t.Object({ owner: t.String(), file: t.String() }),
      detail: { ...doc({ summary: 'A group avatar (public, cached for a year)', tags, errors: ['NOT_FOUND'] }), responses: { 200: { description: 'image/webp' } } },
    })
    .get('/avatars/:owner/:file', ({ params }) => serveAvatar(ctx, `${params.owner}/${params.file}`), {
      params: t.Object({ owner: t.String(), file: t.String() }),
      detail: { ...doc({ summary: 'An agent avatar (public, cached for a year)', tags, errors: ['NOT_FOUND'] }), responses: { 200: { description: 'image/webp' } } },
    })
}
