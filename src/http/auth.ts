import type { AppContext } from '../context.ts'
import { sha256Hex } from '../lib/crypto.ts'
import type { AgentRecord } from '../modules/agents/record.ts'
import { ApiError, fail, rateLimited } from './errors.ts'
import { noteLimit } from '../limits/rate-window.ts'
import { getMeta } from './request-meta.ts'

export type AuthMode = 'standard' | 'permissive'

export function bearerKey(header: string | null): string | null {
  if (!header) return null
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return m ? m[1]! : null
}

/**
 * The agent key of a request: `Authorization: Bearer …`, or AgentSend's `x-api-key` header
 * (issue 14) when there is no Authorization header. Bearer wins when both are sent.
 */
export function requestKey(headers: Headers): string | null {
  const auth = headers.get('authorization')
  if (auth) return bearerKey(auth)
  const k = headers.get('x-api-key')?.trim()
  return k ? k : null
}

/** The agent a key belongs to, if it may authenticate at all (any status but deleted). */
export async function agentForKey(ctx: AppContext, key: string | null): Promise<AgentRecord | null> {
  if (!key) return null
  const agent = await ctx.agents.byKeyHash(sha256Hex(key))
  if (!agent || agent.status === 'deleted') return null
  return agent
}

export const suspendedError = () =>
  new ApiError('SUSPENDED', 'Account suspended', undefined, undefined, {
    reason: 'community_enforcement',
    detail: 'This account was suspended by community enforcement. Contact support to appeal.',
  })

/**
 * Contract §1.3. Standard auth rejects suspended agents (403 SUSPENDED) and re-evaluates a
 * restricted agent's enforcement status on each request; permissive auth (only GET /v1/agents/me)
 * admits any agent that is not deleted.
 */
/**
 * The per-agent API budget (API_RATE_LIMIT_PER_MIN requests a minute, fixed windows, exact across
 * processes with Redis): every authenticated request but a send, which has its own 60 per second.
 * It is what X-RateLimit-* report on routes without a limit of their own.
 */
async function spendApiBudget(ctx: AppContext, req: Request, agent: AgentRecord): Promise<void> {
  const limit = ctx.config.apiRateLimitPerMin
  if (limit <= 0) return
  const meta = getMeta(req)
  if (req.method === 'POST' && meta.route === '/v1/messages') return
  const r = await ctx.counters.fixed(`api:${agent.id}`, limit, 60_000)
  noteLimit(limit, r)
  if (!r.allowed) throw rateLimited(r.retryAfterMs, `Too many requests: ${limit} per minute`)
}

export async function authenticate(ctx: AppContext, req: Request, mode: AuthMode = 'standard'): Promise<AgentRecord> {
  const meta = getMeta(req)
  let agent = meta.agent ?? (await agentForKey(ctx, requestKey(req.headers)))
  if (!agent) throw fail('UNAUTHORIZED')
  if (agent.status === 'restricted' && !meta.agent) agent = await ctx.enforcement.reevaluate(agent)
  const first = !meta.agent
  meta.agent = agent
  if (mode === 'standard' && agent.status === 'suspended') throw suspendedError()
  if (first) await spendApiBudget(ctx, req, agent)
  return agent
}
