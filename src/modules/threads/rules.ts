import type { RawSql } from '../../db/client.ts'
import { fail } from '../../http/errors.ts'
import { newId } from '../../lib/ids.ts'

/*
 * Threads (seed 001, Context Exchange). A thread is the set of messages of one conversation that
 * carry the same `metadata.thread_id`; the message that opened it (with `thread_subject`) names
 * it. No table of its own: the message row is the thread's existence, written in the same
 * statement, so a thread can never point at nothing (a partial index makes the lookups cheap).
 */

const THREAD_ID = /^thr_[A-Za-z0-9_-]{16}$/
export const MAX_SUBJECT = 200

export interface ThreadIntent {
  /** The metadata to store (with `thread_id` filled in for a new thread). */
  metadata: Record<string, unknown>
  /** A reply into an existing thread: it must exist in the conversation. */
  replyTo: string | null
}

/** Read `thread_id` / `thread_subject` of a send's metadata: open a thread, reply in one, or neither. */
export function threadIntent(metadata: Record<string, unknown> | undefined): ThreadIntent | null {
  if (!metadata) return null
  const id = metadata.thread_id
  const subject = metadata.thread_subject
  if (id === undefined && subject === undefined) return null
  if (id !== undefined) {
    if (typeof id !== 'string' || !THREAD_ID.test(id)) throw fail('THREAD_NOT_FOUND', 'Unknown thread_id')
    return { metadata, replyTo: id }
  }
  if (typeof subject !== 'string' || subject.trim().length === 0 || subject.length > MAX_SUBJECT) {
    throw fail('VALIDATION_ERROR', `metadata.thread_subject must be a non-empty string of at most ${MAX_SUBJECT} characters`)
  }
  return { metadata: { ...metadata, thread_id: newId('thr') }, replyTo: null }
}

/** 404 THREAD_NOT_FOUND unless `threadId` is a thread of `conversationId`. */
export async function requireThread(sql: RawSql, conversationId: string | null, threadId: string): Promise<void> {
  if (!conversationId) throw fail('THREAD_NOT_FOUND', 'Unknown thread_id')
  const rows = await sql.query(`SELECT 1 FROM messages WHERE conversation_id = $1 AND (metadata->>'thread_id') = $2 LIMIT 1`, [conversationId, threadId])
  if (rows.length === 0) throw fail('THREAD_NOT_FOUND', 'Unknown thread_id')
}
