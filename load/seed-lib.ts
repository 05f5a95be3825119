import postgres from 'postgres'
import { randomBytes } from 'node:crypto'
import { mintApiKey } from '../src/lib/crypto.ts'
import { newId } from '../src/lib/ids.ts'

/**
 * Seeding for benchmarks and load suites: agents with known API keys and, optionally, established
 * direct conversations with mutual contacts — written straight into the server's tables (the
 * API would need an emailed code per agent). Keys are stored as SHA-256 exactly as the server does.
 */
export interface SeededAgent {
  id: string
  handle: string
  apiKey: string
}

export interface SeededPair {
  a: SeededAgent
  b: SeededAgent
  conversationId: string
}

export async function seedAgents(databaseUrl: string, count: number, prefix: string): Promise<SeededAgent[]> {
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} })
  const run = randomBytes(3).toString('hex')
  const agents: SeededAgent[] = []
  const rows: Record<string, unknown>[] = []
  for (let i = 0; i < count; i++) {
    const { key, hash } = mintApiKey()
    const a = { id: newId('agt'), handle: `${prefix}-${run}-${i}`.slice(0, 30), apiKey: key }
    agents.push(a)
    rows.push({ id: a.id, handle: a.handle, email: `${a.handle}@load.test`, api_key_hash: hash })
  }
  for (let i = 0; i < rows.length; i += 1000) await sql`insert into agents ${sql(rows.slice(i, i + 1000))}`
  await sql.end()
  return agents
}

/** Pairs (agents[2i], agents[2i+1]) with an established direct conversation and mutual contacts. */
export async function seedPairs(databaseUrl: string, agents: SeededAgent[]): Promise<SeededPair[]> {
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} })
  const pairs: SeededPair[] = []
  const convs: Record<string, unknown>[] = []
  const members: Record<string, unknown>[] = []
  const contacts: Record<string, unknown>[] = []
  for (let i = 0; i + 1 < agents.length; i += 2) {
    const a = agents[i]!
    const b = agents[i + 1]!
    const [x, y] = a.id < b.id ? [a.id, b.id] : [b.id, a.id]
    const id = newId('conv')
    pairs.push({ a, b, conversationId: id })
    convs.push({ id, type: 'direct', agent_a: x, agent_b: y, initiator_id: a.id, established: true, established_at: new Date() })
    members.push({ conversation_id: id, agent_id: a.id }, { conversation_id: id, agent_id: b.id })
    contacts.push({ owner_id: a.id, contact_id: b.id }, { owner_id: b.id, contact_id: a.id })
  }
  for (let i = 0; i < convs.length; i += 1000) await sql`insert into conversations ${sql(convs.slice(i, i + 1000))}`
  for (let i = 0; i < members.length; i += 1000) await sql`insert into conversation_members ${sql(members.slice(i, i + 1000))}`
  for (let i = 0; i < contacts.length; i += 1000) await sql`insert into contacts ${sql(contacts.slice(i, i + 1000))}`
  await sql.end()
  return pairs
}

/**
 * Groups whose members are all of `members` (the first one is the creator and admin), each an
 * ordinary group conversation as the server would create it.
 */
export async function seedGroups(databaseUrl: string, members: SeededAgent[], count: number): Promise<string[]> {
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} })
  const ids: string[] = []
  for (let g = 0; g < count; g++) {
    const id = newId('grp')
    ids.push(id)
    await sql`insert into conversations ${sql({ id, type: 'group', name: `load group ${g}`, created_by: members[0]!.id })}`
    const rows = members.map((m, i) => ({ conversation_id: id, agent_id: m.id, role: i === 0 ? 'admin' : 'member', joined_seq: 1 }))
    for (let i = 0; i < rows.length; i += 1000) await sql`insert into conversation_members ${sql(rows.slice(i, i + 1000))}`
  }
  await sql.end()
  return ids
}

/** Established conversations between one agent and each of `others` (mutual contacts). */
export async function seedStar(databaseUrl: string, center: SeededAgent, others: SeededAgent[]): Promise<void> {
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} })
  const convs: Record<string, unknown>[] = []
  const members: Record<string, unknown>[] = []
  const contacts: Record<string, unknown>[] = []
  for (const o of others) {
    const [x, y] = center.id < o.id ? [center.id, o.id] : [o.id, center.id]
    const id = newId('conv')
    convs.push({ id, type: 'direct', agent_a: x, agent_b: y, initiator_id: o.id, established: true, established_at: new Date() })
    members.push({ conversation_id: id, agent_id: center.id }, { conversation_id: id, agent_id: o.id })
    contacts.push({ owner_id: center.id, contact_id: o.id }, { owner_id: o.id, contact_id: center.id })
  }
  for (let i = 0; i < convs.length; i += 1000) await sql`insert into conversations ${sql(convs.slice(i, i + 1000))}`
  for (let i = 0; i < members.length; i += 1000) await sql`insert into conversation_members ${sql(members.slice(i, i + 1000))}`
  for (let i = 0; i < contacts.length; i += 1000) await sql`insert into contacts ${sql(contacts.slice(i, i + 1000))}`
  await sql.end()
}
