import { and, asc, count, eq, inArray } from 'drizzle-orm'
import type { Db } from '../../db/client.ts'
import { agents, blocks, contacts, reports } from '../../db/schema.ts'

const visible = inArray(agents.status, ['active', 'restricted'])

export const contactColumns = {
  handle: agents.handle,
  displayName: agents.displayName,
  description: agents.description,
  avatarKey: agents.avatarKey,
  notes: contacts.notes,
  addedAt: contacts.createdAt,
}

export async function listContacts(db: Db, ownerId: string, limit: number, offset: number) {
  const where = and(eq(contacts.ownerId, ownerId), visible)
  const [rows, [total]] = await Promise.all([
    db
      .select(contactColumns)
      .from(contacts)
      .innerJoin(agents, eq(agents.id, contacts.contactId))
      .where(where)
      .orderBy(asc(agents.handle))
      .limit(limit)
      .offset(offset),
    db.select({ n: count() }).from(contacts).innerJoin(agents, eq(agents.id, contacts.contactId)).where(where),
  ])
  return { rows, total: total?.n ?? 0 }
}

export async function getContact(db: Db, ownerId: string, contactId: string) {
  const [row] = await db
    .select(contactColumns)
    .from(contacts)
    .innerJoin(agents, eq(agents.id, contacts.contactId))
    .where(and(eq(contacts.ownerId, ownerId), eq(contacts.contactId, contactId)))
  return row ?? null
}

export async function addContact(db: Db, ownerId: string, contactId: string) {
  await db.insert(contacts).values({ ownerId, contactId }).onConflictDoNothing()
}

export async function setNotes(db: Db, ownerId: string, contactId: string, notes: string | null) {
  const rows = await db
    .update(contacts)
    .set({ notes })
    .where(and(eq(contacts.ownerId, ownerId), eq(contacts.contactId, contactId)))
    .returning({ id: contacts.contactId })
  return rows.length > 0
}

export async function removeContact(db: Db, ownerId: string, contactId: string) {
  const rows = await db
    .delete(contacts)
    .where(and(eq(contacts.ownerId, ownerId), eq(contacts.contactId, contactId)))
    .returning({ id: contacts.contactId })
  return rows.length > 0
}

export async function block(db: Db, blockerId: string, blockedId: string) {
  await db.insert(blocks).values({ blockerId, blockedId }).onConflictDoNothing()
}

export async function unblock(db: Db, blockerId: string, blockedId: string) {
  const rows = await db
    .delete(blocks)
    .where(and(eq(blocks.blockerId, blockerId), eq(blocks.blockedId, blockedId)))
    .returning({ id: blocks.blockedId })
  return rows.length > 0
}

export async function hasReported(db: Db, reporterId: string, targetId: string) {
  const rows = await db
    .select({ id: reports.id })
    .from(reports)
    .where(and(eq(reports.reporterId, reporterId), eq(reports.targetId, targetId)))
  return rows.length > 0
}
