import { t } from 'elysia'
import type { Bus } from '../../bus/bus.ts'
import type { RawSql } from '../../db/client.ts'
import { LazyCache } from '../../lib/lazy-cache.ts'
import type { AgentRecord } from '../agents/record.ts'
import { wantsWrapped } from '../agents/safety.ts'
import type { AgentStore } from '../agents/store.ts'
import type { Relations } from '../contacts/relations.ts'
import type { PublicMessage } from './shape.ts'
import { FLAGS, scanText, wrapUntrusted, type Flag } from './untrusted.ts'

/*
 * Provenance (issue 16): beside every message delivered to someone other than its sender — live
 * frames, sync, the WebSocket drain, long-poll, history, webhooks — the facts a recipient needs to
 * decide how far to trust it, computed by the server rather than claimed by the sender:
 * `{sender, is_contact, claimed, system, account_age_days, flags}`. `is_contact` is the
 * recipient's contact book, so the object is per recipient; everything else is per message.
 * The SDK ignores the extra key; clients that did not opt into wrapping get `content` unchanged.
 */

export const ProvenanceSchema = t.Object(
  {
    sender: t.String({ description: "The sender's handle" }),
    is_contact: t.Boolean({ description: "The sender is in the recipient's contacts" }),
    claimed: t.Boolean({ description: 'The sender is claimed by an owner (a person answers for it)' }),
    system: t.Boolean({ description: 'The sender is a system agent of this server' }),
    account_age_days: t.Integer({ description: "Whole days since the sender's registration" }),
    flags: t.Array(t.String(), { description: `Patterns seen in content.text, never acted on by the server: ${FLAGS.join(', ')}` }),
  },
  { title: 'Provenance', description: 'Extension (issue 16): server-computed facts about the sender, per recipient' },
)

export interface ProvenanceBody {
  sender: string
  is_contact: boolean
  claimed: boolean
  system: boolean
  account_age_days: number
  flags: Flag[]
}

export type Delivered<M extends PublicMessage> = M & { provenance: ProvenanceBody }

const DAY_MS = 86_400_000

export class Provenance {
  /** Whether an agent is claimed: read once, dropped on `agent.invalidate` (claims and releases publish it). */
  private readonly claimed: LazyCache<string, boolean>

  constructor(
    sql: RawSql,
    bus: Bus,
    private readonly agents: AgentStore,
    private readonly relations: Relations,
  ) {
    this.claimed = new LazyCache(async (id) => (await sql.query('SELECT 1 FROM owner_claims WHERE agent_id = $1', [id])).length > 0)
    bus.subscribe((e) => {
      if (e.type === 'agent.invalidate') this.claimed.invalidate(e.agentId)
    })
  }

  /** The message as `recipient` gets it: provenance added, text wrapped when the recipient asked. */
  async deliver<M extends PublicMessage>(pub: M, recipient: AgentRecord | string, knownSender?: AgentRecord): Promise<Delivered<M>> {
    const to = typeof recipient === 'string' ? await this.agents.get(recipient) : recipient
    const sender = knownSender?.handle === pub.sender ? knownSender : await this.senderOf(pub)
    const base = await this.base(pub, sender)
    const isContact = to && sender ? await this.relations.hasContact(to.id, sender.id) : false
    return this.shape(pub, { ...base, is_contact: isContact }, Boolean(to && wantsWrapped(to) && !base.system))
  }

  /**
   * One message to many recipients (group fan-out): at most four variants — contact or not,
   * wrapped or not — each serialised once by the caller, instead of one frame per member.
   */
  async variants<M extends PublicMessage>(pub: M, recipients: AgentRecord[], knownSender?: AgentRecord): Promise<{ message: Delivered<M>; ids: string[] }[]> {
    const sender = knownSender?.handle === pub.sender ? knownSender : await this.senderOf(pub)
    const base = await this.base(pub, sender)
    const groups = new Map<string, { contact: boolean; wrap: boolean; ids: string[] }>()
    for (const r of recipients) {
      const contact = sender ? await this.relations.hasContact(r.id, sender.id) : false
      const wrap = wantsWrapped(r) && !base.system
      const key = `${contact ? 1 : 0}${wrap ? 1 : 0}`
      let g = groups.get(key)
      if (!g) groups.set(key, (g = { contact, wrap, ids: [] }))
      g.ids.push(r.id)
    }
    return [...groups.values()].map((g) => ({ message: this.shape(pub, { ...base, is_contact: g.contact }, g.wrap), ids: g.ids }))
  }

  private async senderOf(pub: PublicMessage): Promise<AgentRecord | null> {
    return this.agents.getByHandle(pub.sender)
  }

  private async base(pub: PublicMessage, sender: AgentRecord | null): Promise<Omit<ProvenanceBody, 'is_contact'>> {
    return {
      sender: pub.sender,
      claimed: sender ? await this.claimed.get(sender.id) : false,
      system: sender?.isSystem ?? false,
      account_age_days: sender ? Math.max(0, Math.floor((Date.now() - sender.createdAt.getTime()) / DAY_MS)) : 0,
      flags: scanText(pub.content.text),
    }
  }

  private shape<M extends PublicMessage>(pub: M, provenance: ProvenanceBody, wrap: boolean): Delivered<M> {
    if (!wrap || typeof pub.content.text !== 'string') return { ...pub, provenance }
    const content = { ...pub.content, text: wrapUntrusted(pub.content.text, pub.sender, pub.id, provenance.flags) }
    return { ...pub, content, provenance }
  }
}
