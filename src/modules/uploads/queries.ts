import type { RawSql } from '../../db/client.ts'

export interface AttachmentRow {
  id: string
  uploader_id: string
  scope: 'direct' | 'group'
  recipient_id: string | null
  conversation_id: string | null
  filename: string
  content_type: string
  size: string | number
  sha256: string
  storage_key: string
  state: 'pending' | 'uploaded'
}

export async function attachmentById(q: RawSql, id: string): Promise<AttachmentRow | null> {
  const [r] = await q.query<AttachmentRow>(
    `SELECT id, uploader_id, scope, recipient_id, conversation_id, filename, content_type, size, sha256, storage_key, state FROM attachments WHERE id = $1`,
    [id],
  )
  return r ?? null
}

export async function insertAttachment(q: RawSql, a: Omit<AttachmentRow, 'state'>) {
  await q.query(
    `INSERT INTO attachments (id, uploader_id, scope, recipient_id, conversation_id, filename, content_type, size, sha256, storage_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [a.id, a.uploader_id, a.scope, a.recipient_id, a.conversation_id, a.filename, a.content_type, a.size, a.sha256, a.storage_key],
  )
}

/** Pending → uploaded, once: two racing PUTs cannot both claim the attachment. */
export async function markUploaded(q: RawSql, id: string): Promise<boolean> {
  const rows = await q.query(`UPDATE attachments SET state = 'uploaded', uploaded_at = now() WHERE id = $1 AND state = 'pending' RETURNING 1`, [id])
  return rows.length > 0
}
