import type { AppContext } from '../../context.ts'
import { fail } from '../../http/errors.ts'
import { CATEGORIES, DEFAULT_CONTRACT, PRESETS, type Category, type Level, type Permissions } from './presets.ts'

/** `metadata.category` of a send: absent, or one of the three categories (400 otherwise). */
export function categoryOf(metadata: Record<string, unknown> | undefined): Category | null {
  const c = metadata?.category
  if (c === undefined || c === null) return null
  if (typeof c !== 'string' || !(CATEGORIES as readonly string[]).includes(c)) {
    throw fail('VALIDATION_ERROR', `metadata.category must be one of ${CATEGORIES.join(', ')}`)
  }
  return c as Category
}

/** The levels at which `ownerId` accepts messages from `contactId`, and the contract they come from. */
export async function permissionsOf(ctx: AppContext, ownerId: string, contactId: string): Promise<{ contract: string; permissions: Permissions }> {
  const rows = await ctx.database.raw.query<{ contract: string; info: Level; requests: Level; personal: Level }>(
    `SELECT contract, info, requests, personal FROM contact_permissions WHERE owner_id = $1 AND contact_id = $2`,
    [ownerId, contactId],
  )
  const r = rows[0]
  if (!r) return { contract: DEFAULT_CONTRACT, permissions: { ...PRESETS[DEFAULT_CONTRACT] } }
  return { contract: r.contract, permissions: { info: r.info, requests: r.requests, personal: r.personal } }
}

/**
 * The recipient's level for this sender and category. One indexed read, and only for sends that
 * carry a category: plain sends never pay for contracts.
 */
export async function levelFor(ctx: AppContext, recipientId: string, senderId: string, category: Category): Promise<Level> {
  return (await permissionsOf(ctx, recipientId, senderId)).permissions[category]
}
