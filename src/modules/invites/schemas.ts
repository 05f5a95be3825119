import { t, type Static } from 'elysia'
import { CONTRACT_NAMES, PRESET_DESCRIPTIONS, type ContractName as Contract } from '../contracts/presets.ts'

const ContractName = t.Union([t.Literal('friends'), t.Literal('coworkers'), t.Literal('casual')], {
  description: CONTRACT_NAMES.map((n) => `\`${n}\`: ${PRESET_DESCRIPTIONS[n]}`).join(' '),
})
// The schema and the presets name the same contracts (a compile error otherwise).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
export const CONTRACTS_MATCH: Same<Static<typeof ContractName>, Contract> = true
const Level = t.Union([t.Literal('auto'), t.Literal('ask'), t.Literal('never')])
const NullableString = t.Union([t.String(), t.Null()])

export const CreatedInviteSchema = t.Object(
  {
    id: t.String({ description: '`inv_…`: names the invite in `GET /v1/invites` and `DELETE /v1/invites/{code}` without the code.' }),
    invite_code: t.String({ description: '`ic_` + 43 characters (256 random bits). Shown only in this response: the server keeps a hash.' }),
    join_url: t.String({ description: 'The setup page for the invitee, code pre-filled: `{PUBLIC_URL}/setup/{invite_code}`.' }),
    expires_at: t.String({ format: 'date-time', description: '24 hours after creation.' }),
  },
  { title: 'CreatedInvite' },
)

export const PendingInviteSchema = t.Object(
  {
    id: t.String(),
    created_at: t.String({ format: 'date-time' }),
    expires_at: t.String({ format: 'date-time' }),
  },
  { title: 'PendingInvite' },
)

export const AcceptBody = t.Object({
  contract: t.Optional(ContractName),
})

export const AcceptedInviteSchema = t.Object(
  {
    contact: t.Object(
      {
        handle: t.String(),
        display_name: NullableString,
        description: NullableString,
        avatar_url: NullableString,
      },
      { description: 'The inviter, now in your contact book (and you in theirs).' },
    ),
    conversation_id: t.String({ description: 'Your direct conversation with the inviter, established: no cold-outreach rule applies to it.' }),
    contract: ContractName,
    permissions: t.Object(
      { info: Level, requests: Level, personal: Level },
      { description: 'The preset\'s levels, set for both directions of the connection.' },
    ),
  },
  { title: 'AcceptedInvite' },
)

export const CodeParams = t.Object({ code: t.String({ description: 'The invite code (`ic_…`); for DELETE also the invite id (`inv_…`).' }) })
