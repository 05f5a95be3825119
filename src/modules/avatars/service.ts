import type { AppContext } from '../../context.ts'
import { noteLimit } from '../../limits/rate-window.ts'
import { fail, rateLimited } from '../../http/errors.ts'
import { sha256Hex } from '../../lib/crypto.ts'
import { requireOwnHandle, type AgentRecord } from '../agents/record.ts'
import { avatarUrl } from '../agents/shapes.ts'
import { memberOf, systemMessage } from '../groups/service.ts'
import { AVATAR, processAvatar, readCapped } from './image.ts'

/*
 * Agent and group avatars (contract §3.5, §10.4). Keys are content-addressed — `{16 hex of
 * sha256(owner id)}/{32 hex of sha256(input bytes)}.webp`, groups under `g/` — so a URL never
 * changes meaning and can be cached for a year; the object a key replaced is removed after the
 * new one is committed.
 */

const storageKey = (key: string) => `avatars/${key}`

/** 5 writes a minute per agent, shared by agent and group avatars, PUT and DELETE. */
async function writeToken(ctx: AppContext, me: AgentRecord) {
  const r = await ctx.counters.fixed(`avatar:${me.id}`, AVATAR.writesPerMinute, 60_000)
  noteLimit(AVATAR.writesPerMinute, r)
  if (!r.allowed) throw rateLimited(r.retryAfterMs, 'Too many avatar changes (5 per minute)')
}

async function store(ctx: AppContext, key: string, webp: Buffer) {
  try {
    await ctx.storage.put(storageKey(key), webp, 'image/webp')
  } catch {
    throw fail('STORAGE_UNAVAILABLE')
  }
}

async function removeObject(ctx: AppContext, key: string | null, keep: string | null) {
  if (!key || key === keep) return
  await ctx.storage.delete(storageKey(key)).catch((err) => ctx.log.warn({ err: String(err), key }, 'old avatar not removed'))
}

const ownHandle = (me: AgentRecord, raw: string) => requireOwnHandle(raw, me.handle, 'You can only change your own avatar')

export async function setAgentAvatar(ctx: AppContext, me: AgentRecord, rawHandle: string, request: Request) {
  ownHandle(me, rawHandle)
  await writeToken(ctx, me)
  const bytes = await readCapped(request, AVATAR.maxBytes)
  const webp = await processAvatar(bytes)
  const key = `${sha256Hex(me.id).slice(0, 16)}/${sha256Hex(bytes).slice(0, 32)}.webp`
  await store(ctx, key, webp)
  const [old] = await ctx.database.raw.query<{ old: string | null }>(
    `UPDATE agents a SET avatar_key = $2, updated_at = now() FROM (SELECT avatar_key AS old FROM agents WHERE id = $1 FOR UPDATE) o WHERE a.id = $1 RETURNING o.old`,
    [me.id, key],
  )
  await ctx.agents.changed(me.id)
  await removeObject(ctx, old?.old ?? null, key)
  return { avatar_key: key, avatar_url: avatarUrl(ctx.config.publicUrl, key)! }
}

export async function removeAgentAvatar(ctx: AppContext, me: AgentRecord, rawHandle: string) {
  ownHandle(me, rawHandle)
  await writeToken(ctx, me)
  const [old] = await ctx.database.raw.query<{ old: string | null }>(
    `UPDATE agents a SET avatar_key = NULL, updated_at = now() FROM (SELECT avatar_key AS old FROM agents WHERE id = $1 FOR UPDATE) o WHERE a.id = $1 AND o.old IS NOT NULL RETURNING o.old`,
    [me.id],
  )
  if (!old?.old) throw fail('NOT_FOUND', 'No avatar set')
  await ctx.agents.changed(me.id)
  await removeObject(ctx, old.old, null)
  return { ok: true as const }
}

async function groupAdmin(ctx: AppContext, me: AgentRecord, groupId: string) {
  const { g, member } = await memberOf(ctx, groupId, me, true)
  if (member.role !== 'admin') throw fail('FORBIDDEN', 'Only group admins can do that')
  return g
}

export async function setGroupAvatar(ctx: AppContext, me: AgentRecord, groupId: string, request: Request) {
  const g = await groupAdmin(ctx, me, groupId)
  await writeToken(ctx, me)
  const bytes = await readCapped(request, AVATAR.maxBytes)
  const webp = await processAvatar(bytes)
  const key = `g/${sha256Hex(g.id).slice(0, 16)}/${sha256Hex(bytes).slice(0, 32)}.webp`
  await store(ctx, key, webp)
  const url = avatarUrl(ctx.config.publicUrl, key)!
  const [old] = await ctx.database.raw.query<{ old: string | null }>(
    `UPDATE conversations c SET avatar_key = $2, avatar_url = $3 FROM (SELECT avatar_key AS old FROM conversations WHERE id = $1 FOR UPDATE) o WHERE c.id = $1 RETURNING o.old`,
    [g.id, key, url],
  )
  await ctx.groups.changed(g.id)
  await systemMessage(ctx, g.id, me.id, { event: 'avatar_changed', actor_handle: me.handle })
  await removeObject(ctx, old?.old ?? null, key)
  return { avatar_key: key, avatar_url: url }
}

export async function removeGroupAvatar(ctx: AppContext, me: AgentRecord, groupId: string) {
  const g = await groupAdmin(ctx, me, groupId)
  await writeToken(ctx, me)
  const [old] = await ctx.database.raw.query<{ old: string | null; url: string | null }>(
    `UPDATE conversations c SET avatar_key = NULL, avatar_url = NULL FROM (SELECT avatar_key AS old, avatar_url AS url FROM conversations WHERE id = $1 FOR UPDATE) o
     WHERE c.id = $1 AND (o.old IS NOT NULL OR o.url IS NOT NULL) RETURNING o.old, o.url`,
    [g.id],
  )
  if (!old) throw fail('NOT_FOUND', 'No avatar set')
  await ctx.groups.changed(g.id)
  await systemMessage(ctx, g.id, me.id, { event: 'avatar_changed', actor_handle: me.handle })
  await removeObject(ctx, old.old, null)
  return { ok: true as const }
}

/** GET /avatars/…: the stored WebP, cacheable for a year (its key names its content). */
export async function serveAvatar(ctx: AppContext, key: string): Promise<Response> {
  if (!/^(?:g\/)?[0-9a-f]{16}\/[0-9a-f]{32}\.webp$/.test(key)) throw fail('NOT_FOUND', 'No such avatar')
  const obj = await ctx.storage.get(storageKey(key)).catch(() => {
    throw fail('STORAGE_UNAVAILABLE')
  })
  if (!obj) throw fail('NOT_FOUND', 'No such avatar')
  return new Response(obj.stream, {
    headers: { 'content-type': 'image/webp', 'content-length': String(obj.size), 'cache-control': 'public, max-age=31536000, immutable', 'x-content-type-options': 'nosniff' },
  })
}
