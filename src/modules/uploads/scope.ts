import type { AppContext } from '../../context.ts'
import { fail } from '../../http/errors.ts'
import { attachmentById } from './queries.ts'

/**
 * The scope check of a send carrying `content.attachment_id` (contract §14.2): it must exist, be
 * uploaded by the sender and be scoped to this recipient or this group.
 */
export async function checkAttachmentForSend(ctx: AppContext, senderId: string, attachmentId: unknown, target: { recipientId: string } | { groupId: string }) {
  if (attachmentId === undefined) return
  if (typeof attachmentId !== 'string') throw fail('VALIDATION_ERROR', 'content.attachment_id must be a string', { field: 'content.attachment_id' })
  const row = await attachmentById(ctx.database.raw, attachmentId)
  if (!row || row.uploader_id !== senderId || row.state !== 'uploaded') throw fail('ATTACHMENT_NOT_FOUND')
  const ok = 'recipientId' in target ? row.scope === 'direct' && row.recipient_id === target.recipientId : row.scope === 'group' && row.conversation_id === target.groupId
  if (!ok) throw fail('ATTACHMENT_WRONG_SCOPE')
}

