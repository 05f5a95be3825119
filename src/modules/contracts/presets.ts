import type { RawSql } from '../../db/client.ts'

/*
 * Permission contracts per connection (seed 001, Context Exchange). Every connection between two
 * agents carries, for each side, the level at which that side accepts the other's messages in
 * each category: `auto` (delivered), `ask` (held until the recipient approves), `never` (403
 * CATEGORY_BLOCKED). A contract is a named preset of the three levels; each side may then change
 * single categories. No row means the default preset (`friends`): a contact added any other way,
 * or an agent that is not a contact at all, is treated as a friend would be.
 */

export const CATEGORIES = ['info', 'requests', 'personal'] as const
export type Category = (typeof CATEGORIES)[number]
export const LEVELS = ['auto', 'ask', 'never'] as const
export type Level = (typeof LEVELS)[number]
export type Permissions = Record<Category, Level>

export const PRESETS = {
  friends: { info: 'auto', requests: 'auto', personal: 'ask' },
  coworkers: { info: 'auto', requests: 'auto', personal: 'never' },
  casual: { info: 'auto', requests: 'ask', personal: 'never' },
} as const satisfies Record<string, Permissions>
export type ContractName = keyof typeof PRESETS
export const CONTRACT_NAMES = Object.keys(PRESETS) as ContractName[]
export const DEFAULT_CONTRACT: ContractName = 'friends'

export const PRESET_DESCRIPTIONS: Record<ContractName, string> = {
  friends: 'Everything flows; personal matters need your approval first.',
  coworkers: 'Information and requests flow; personal matters are refused.',
  casual: 'Information flows; requests need your approval; personal matters are refused.',
}

/**
 * Put the connection `ownerId → contactId` (the levels at which `ownerId` accepts `contactId`) on a
 * preset, replacing any custom levels. Run it on the transaction that creates the connection.
 */
export async function setContract(q: RawSql, ownerId: string, contactId: string, contract: ContractName): Promise<void> {
  const p = PRESETS[contract]
  await q.query(
    `INSERT INTO contact_permissions (owner_id, contact_id, contract, info, requests, personal) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (owner_id, contact_id) DO UPDATE SET contract = EXCLUDED.contract, info = EXCLUDED.info,
       requests = EXCLUDED.requests, personal = EXCLUDED.personal, updated_at = now()`,
    [ownerId, contactId, contract, p.info, p.requests, p.personal],
  )
}
