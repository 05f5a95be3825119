import { createHash } from 'node:crypto'
import type { AppContext } from '../../context.ts'
import { agentNotFound, ApiError, fail } from '../../http/errors.ts'
import { bodyChunks } from '../../http/raw-body.ts'
import { normalizeHandle } from '../../lib/handles.ts'
import { newId } from '../../lib/ids.ts'
import { StorageUnavailable } from '../../storage/storage.ts'
import { isVisible, type AgentRecord } from '../agents/record.ts'
import { memberOf } from '../groups/service.ts'
import { attachmentById, insertAttachment, markUploaded, type AttachmentRow } from './queries.ts'
import { DOWNLOAD_URL_TTL_S, signedPayload, UPLOAD_URL_TTL_S } from './rules.ts'

export interface CreateUploadBody {
  to?: string
  conversation_id?: string
  filename: string
  content_type: string
  size: number
  sha256: string
}

const storageDown = (err: unknown) => (err instanceof StorageUnavailable ? fail('STORAGE_UNAVAILABLE') : err)

function signedUrl(ctx: AppContext, purpose: 'up' | 'down', id: string, ttlS: number) {
  const expires = Math.floor(Date.now() / 1000) + ttlS
  const sig = ctx.secrets.sign(signedPayload(purpose, id, expires))
  const path = purpose === 'up' ? `/v1/uploads/${id}` : `/v1/files/${id}`
  return `${ctx.config.publicUrl}${path}?expires=${expires}&sig=${sig}`
}

/** A signed URL's `expires` and `sig` are valid for this purpose and attachment, and not expired. */
export function checkSignature(ctx: AppContext, purpose: 'up' | 'down', id: string, expires: string | undefined, sig: string | undefined) {
  const e = Number(expires)
  if (!expires || !sig || !Number.isInteger(e) || e < Math.floor(Date.now() / 1000) || !ctx.secrets.verify(signedPayload(purpose, id, e), sig)) {
    throw fail('FORBIDDEN', 'Invalid or expired signed URL')
  }
}

/** POST /v1/uploads: scope the attachment to one recipient or one group, hand out the signed PUT URL. */
export async function createUpload(ctx: AppContext, me: AgentRecord, body: CreateUploadBody) {
  const hasTo = typeof body.to === 'string' && body.to.length > 0
  const hasConv = typeof body.conversation_id === 'string' && body.conversation_id.length > 0
  if (hasTo === hasConv) throw fail('VALIDATION_ERROR', 'Exactly one of `to` or `conversation_id` must be provided')
  let scope: Pick<AttachmentRow, 'scope' | 'recipient_id' | 'conversation_id'>
  if (hasTo) {
    const handle = normalizeHandle(body.to!)
    const recipient = await ctx.agents.getByHandle(handle)
    if (!recipient || !isVisible(recipient)) throw agentNotFound(handle)
    if (recipient.id === me.id) throw fail('VALIDATION_ERROR', 'You cannot upload a file for yourself')
    if (await ctx.relations.blockedEitherWay(me.id, recipient.id)) throw fail('BLOCKED')
    scope = { scope: 'direct', recipient_id: recipient.id, conversation_id: null }
  } else {
    const { g } = await memberOf(ctx, body.conversation_id!, me, true)
    scope = { scope: 'group', recipient_id: null, conversation_id: g.id }
  }
  const id = newId('att')
  await insertAttachment(ctx.database.raw, {
    id,
    uploader_id: me.id,
    ...scope,
    filename: body.filename,
    content_type: body.content_type,
    size: body.size,
    sha256: body.sha256,
    storage_key: `attachments/${id}`,
  })
  return { attachment_id: id, upload_url: signedUrl(ctx, 'up', id, UPLOAD_URL_TTL_S), expires_in: UPLOAD_URL_TTL_S }
}

/**
 * PUT to the signed upload URL: the bytes are streamed to storage while their SHA-256 and size
 * are computed; a body longer than declared is cut off at once (413), and a wrong size or hash
 * leaves nothing stored (400). Only then does the attachment become usable.
 */
export async function receiveUpload(ctx: AppContext, id: string, request: Request) {
  const row = await attachmentById(ctx.database.raw, id)
  if (!row) throw fail('NOT_FOUND', 'Attachment not found')
  if (row.state === 'uploaded') throw fail('ALREADY_UPLOADED')
  const size = Number(row.size)
  const writer = await ctx.storage.writer(row.storage_key, row.content_type).catch((err) => {
    throw storageDown(err)
  })
  const hash = createHash('sha256')
  let n = 0
  try {
    const tooLarge = () => fail('PAYLOAD_TOO_LARGE', `Body exceeds the declared size of ${size} bytes`, { field: 'size', expected: size })
    for await (const chunk of bodyChunks(request, size, tooLarge)) {
      n += chunk.byteLength
      hash.update(chunk)
      await writer.write(chunk)
    }
    if (n !== size) throw fail('VALIDATION_ERROR', `Expected ${size} bytes, got ${n}`, { field: 'size', expected: size, received: n })
    const digest = hash.digest('hex')
    if (digest !== row.sha256) throw fail('VALIDATION_ERROR', 'The body does not match the declared sha256', { field: 'sha256', expected: row.sha256, received: digest })
    await writer.commit()
  } catch (err) {
    await writer.abort().catch(() => {})
    if (err instanceof ApiError) throw err
    throw storageDown(err)
  }
  await markUploaded(ctx.database.raw, id)
  return { attachment_id: id, size, sha256: row.sha256 }
}

/** Who may download: the uploader, the direct recipient, active members of the group (later joiners too). */
export async function downloadLocation(ctx: AppContext, me: AgentRecord, id: string): Promise<string> {
  const notFound = () => fail('NOT_FOUND', 'Attachment not found')
  const row = await attachmentById(ctx.database.raw, id)
  if (!row || row.state !== 'uploaded') throw notFound()
  if (row.scope === 'group') {
    try {
      await memberOf(ctx, row.conversation_id!, me, true)
    } catch (err) {
      // Former members of a deleted group learn it is gone (410); everyone else sees nothing.
      if (err instanceof ApiError && err.code === 'GROUP_DELETED') throw err
      // The uploader keeps access after leaving; anyone else who is not a member sees nothing.
      if (!(err instanceof ApiError && err.code === 'GROUP_NOT_FOUND' && row.uploader_id === me.id)) throw notFound()
    }
  } else if (row.uploader_id !== me.id && row.recipient_id !== me.id) throw notFound()
  return signedUrl(ctx, 'down', id, DOWNLOAD_URL_TTL_S)
}

/** GET of the signed download URL: the stored bytes, as an attachment (never rendered inline). */
export async function serveFile(ctx: AppContext, id: string): Promise<Response> {
  const row = await attachmentById(ctx.database.raw, id)
  if (!row || row.state !== 'uploaded') throw fail('NOT_FOUND', 'Attachment not found')
  const obj = await ctx.storage.get(row.storage_key).catch((err) => {
    throw storageDown(err)
  })
  if (!obj) throw fail('NOT_FOUND', 'Attachment not found')
  return new Response(obj.stream, {
    headers: {
      'content-type': row.content_type,
      'content-length': String(obj.size),
      'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(row.filename)}`,
      'x-content-type-options': 'nosniff',
      'cache-control': 'private, max-age=300',
    },
  })
}

