import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { jsonResponse } from '../../http/render.ts'
import { ALLOWED_MIME, MAX_UPLOAD_BYTES, UPLOAD_URL_TTL_S } from './rules.ts'
import { checkSignature, createUpload, downloadLocation, receiveUpload, serveFile } from './service.ts'

const tags = ['Uploads']
const Mime = t.Union(
  ALLOWED_MIME.map((m) => t.Literal(m)) as [ReturnType<typeof t.Literal<(typeof ALLOWED_MIME)[number]>>, ...ReturnType<typeof t.Literal<(typeof ALLOWED_MIME)[number]>>[]],
)
const Signed = t.Object({ expires: t.Optional(t.String()), sig: t.Optional(t.String()) })
const binaryBody = { required: true, content: { 'application/octet-stream': { schema: { type: 'string' as const, format: 'binary' } } } }

export function uploadRoutes(ctx: AppContext) {
  return new Elysia({ name: 'uploads' })
    .post(
      '/v1/uploads',
      async ({ body, request }) => {
        const me = await authenticate(ctx, request)
        return jsonResponse(201, await createUpload(ctx, me, body))
      },
      {
        body: t.Object({
          to: t.Optional(t.String({ minLength: 1, maxLength: 64, description: 'Recipient handle (direct); or' })),
          conversation_id: t.Optional(t.String({ minLength: 1, maxLength: 64, description: 'Group id' })),
          filename: t.String({ minLength: 1, maxLength: 255 }),
          content_type: Mime,
          size: t.Integer({ minimum: 1, maximum: MAX_UPLOAD_BYTES }),
          sha256: t.String({ pattern: '^[0-9a-f]{64}$', description: 'Lowercase hex SHA-256 of the bytes' }),
        }),
        response: { 201: t.Object({ attachment_id: t.String(), upload_url: t.String(), expires_in: t.Literal(UPLOAD_URL_TTL_S) }) },
        detail: doc({
          summary: 'Announce an upload (scoped to one recipient or one group); PUT the bytes to `upload_url`',
          tags,
          auth: true,
          errors: ['VALIDATION_ERROR', 'AGENT_NOT_FOUND', 'BLOCKED', 'GROUP_NOT_FOUND', 'GROUP_DELETED', 'STORAGE_UNAVAILABLE'],
        }),
      },
    )
    .put(
      '/v1/uploads/:id',
      async ({ params, query, request }) => {
        checkSignature(ctx, 'up', params.id, query.expires, query.sig)
        return receiveUpload(ctx, params.id, request)
      },
      {
        params: t.Object({ id: t.String() }),
        query: Signed,
        response: t.Object({ attachment_id: t.String(), size: t.Integer(), sha256: t.String() }),
        detail: {
          ...doc({
            summary: 'The signed upload URL: PUT exactly the announced bytes (no API key)',
            description: 'Streamed to storage with the SHA-256 computed on the way. More bytes than announced → 413 at once; a different size or hash → 400 and nothing is kept.',
            tags,
            errors: ['FORBIDDEN', 'NOT_FOUND', 'ALREADY_UPLOADED', 'VALIDATION_ERROR', 'PAYLOAD_TOO_LARGE', 'STORAGE_UNAVAILABLE'],
          }),
          requestBody: binaryBody,
        },
      },
    )
    .get(
      '/v1/attachments/:id',
      async ({ params, request }) => {
        const me = await authenticate(ctx, request)
        const location = await downloadLocation(ctx, me, params.id)
        return new Response(null, { status: 302, headers: { location, 'cache-control': 'no-store' } })
      },
      {
        params: t.Object({ id: t.String() }),
        detail: {
          ...doc({ summary: 'Download: 302 to a signed URL valid 300 s (uploader, direct recipient, active group members)', tags, auth: true, errors: ['NOT_FOUND', 'GROUP_DELETED'] }),
          responses: { 302: { description: '`Location`: the signed download URL' } },
        },
      },
    )
    .get(
      '/v1/files/:id',
      async ({ params, query }) => {
        checkSignature(ctx, 'down', params.id, query.expires, query.sig)
        return serveFile(ctx, params.id)
      },
      {
        params: t.Object({ id: t.String() }),
        query: Signed,
        detail: {
          ...doc({ summary: 'The signed download URL (no API key): the bytes, as an attachment', tags, errors: ['FORBIDDEN', 'NOT_FOUND', 'STORAGE_UNAVAILABLE'] }),
          responses: { 200: { description: 'The file', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } },
        },
      },
    )
}
