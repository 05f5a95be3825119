import { Elysia, t, type Static } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { fail } from '../../http/errors.ts'
import { getContact } from '../contacts/queries.ts'
import { resolveOther } from '../contacts/service.ts'
import { CATEGORIES, CONTRACT_NAMES, LEVELS, PRESET_DESCRIPTIONS, PRESETS, setContract, type ContractName } from './presets.ts'
import { permissionsOf } from './rules.ts'

const tags = ['Permission contracts']
const Level = t.Union([t.Literal('auto'), t.Literal('ask'), t.Literal('never')])
const Category = t.Union([t.Literal('info'), t.Literal('requests'), t.Literal('personal')])
const Contract = t.Union([t.Literal('friends'), t.Literal('coworkers'), t.Literal('casual')], { description: 'Or: put the connection back on a preset' })
// The schemas above name the same values as the presets module.
LEVELS satisfies readonly Static<typeof Level>[]
CATEGORIES satisfies readonly Static<typeof Category>[]
CONTRACT_NAMES satisfies Static<typeof Contract>[]
const PermissionsSchema = t.Object({ info: Level, requests: Level, personal: Level })
const ConnectionPermissions = t.Object(
  { contract: t.String({ description: 'friends | coworkers | casual, or custom after a per-category change' }), permissions: PermissionsSchema },
  { title: 'ConnectionPermissions' },
)

/** Context Exchange's permission contracts (seed 001): presets, and per-connection levels. */
export function contractRoutes(ctx: AppContext) {
  /** The caller's connection to `handle`: it must be one of the caller's contacts (404 otherwise). */
  const connection = async (request: Request, handle: string) => {
    const me = await authenticate(ctx, request)
    const other = await resolveOther(ctx, me, handle, 'You have no connection with yourself')
    if (!(await getContact(ctx.db, me.id, other.id))) throw fail('NOT_FOUND', `@${other.handle} is not one of your contacts`)
    return { me, other }
  }
  return new Elysia({ name: 'contracts' })
    .get(
      '/v1/contracts',
      () => ({
        contracts: CONTRACT_NAMES.map((name) => ({ name, description: PRESET_DESCRIPTIONS[name], permissions: { ...PRESETS[name] }, default: name === 'friends' })),
      }),
      {
        response: t.Object({ contracts: t.Array(t.Object({ name: t.String(), description: t.String(), permissions: PermissionsSchema, default: t.Boolean() })) }),
        detail: doc({
          summary: 'Permission contract presets (no auth)',
          description:
            'Each connection has, for each side, a level per category (`info`, `requests`, `personal`): `auto` delivers, `ask` holds the message for the recipient\'s approval (202 `pending_approval`), `never` refuses it (403 `CATEGORY_BLOCKED`). A message opts in with `metadata.category`; without one it is always delivered.',
          tags,
        }),
      },
    )
    .get(
      '/v1/contacts/:handle/permissions',
      async ({ params, request }) => {
        const { me, other } = await connection(request, params.handle)
        return permissionsOf(ctx, me.id, other.id)
      },
      {
        params: t.Object({ handle: t.String() }),
        response: ConnectionPermissions,
        detail: doc({ summary: 'The levels at which you accept this contact\'s messages, per category', tags, auth: true, errors: ['AGENT_NOT_FOUND', 'NOT_FOUND', 'VALIDATION_ERROR'] }),
      },
    )
    .patch(
      '/v1/contacts/:handle/permissions',
      async ({ params, body, request }) => {
        const { me, other } = await connection(request, params.handle)
        if (body.contract !== undefined) {
          if (body.category !== undefined || body.level !== undefined) throw fail('VALIDATION_ERROR', 'Send either {contract} or {category, level}')
          await setContract(ctx.database.raw, me.id, other.id, body.contract as ContractName)
          return permissionsOf(ctx, me.id, other.id)
        }
        if (body.category === undefined || body.level === undefined) throw fail('VALIDATION_ERROR', 'category and level are required')
        // One statement from the current levels (or the default preset), so two concurrent
        // changes of different categories both stick.
        const d = PRESETS.friends
        await ctx.database.raw.query(
          `INSERT INTO contact_permissions (owner_id, contact_id, contract, info, requests, personal)
           VALUES ($1, $2, 'custom', $3, $4, $5)
           ON CONFLICT (owner_id, contact_id) DO UPDATE SET contract = 'custom', updated_at = now(),
             info = CASE WHEN $6 = 'info' THEN $7 ELSE contact_permissions.info END,
             requests = CASE WHEN $6 = 'requests' THEN $7 ELSE contact_permissions.requests END,
             personal = CASE WHEN $6 = 'personal' THEN $7 ELSE contact_permissions.personal END`,
          [
            me.id,
            other.id,
            body.category === 'info' ? body.level : d.info,
            body.category === 'requests' ? body.level : d.requests,
            body.category === 'personal' ? body.level : d.personal,
            body.category,
            body.level,
          ],
        )
        return permissionsOf(ctx, me.id, other.id)
      },
      {
        params: t.Object({ handle: t.String() }),
        body: t.Object({
          category: t.Optional(Category),
          level: t.Optional(Level),
          contract: t.Optional(Contract),
        }),
        response: ConnectionPermissions,
        detail: doc({ summary: 'Change one category\'s level for this contact (the contract becomes `custom`), or switch to a preset', tags, auth: true, errors: ['AGENT_NOT_FOUND', 'NOT_FOUND', 'VALIDATION_ERROR'] }),
      },
    )
}
