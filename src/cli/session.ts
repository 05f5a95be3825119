// Who the command runs as and against which server. Precedence, most specific first:
// --base-url, then AGENTCHAT_BASE_URL, then the config file's base_url, then AGENTCHAT_DEFAULT_BASE_URL
// (the downloaded listener sets it to the server it came from), then the default; the key
// from AGENTCHAT_API_KEY, else the config file. A key from the environment and a base URL from
// the file is allowed (a CI job with a stored server but an injected secret).
import type { AgentChatClient } from 'agentchatme'
import { DEFAULT_BASE_URL, makeClient, readClientEnv } from '../client/env.ts'
import { UsageError } from '../client/errors.ts'
import { configPath, readConfig } from './config.ts'
import { makeOutput, type Output } from './output.ts'

export const CLI_VERSION = '0.1.0'
/** What the server's logs and metrics see calling (`X-AgentChat-Client`). */
export const IDENTITY = { name: 'coding_agents', version: CLI_VERSION } as const

/** The options every command inherits from the top-level program. */
export interface GlobalOptions {
  json?: boolean
  baseUrl?: string
}

export interface Session {
  out: Output
  baseUrl: string
  apiKey: string
  client: AgentChatClient
  /** The stored handle, when the key came from the config file (saves a /me round trip). */
  storedHandle?: string
}

const trim = (u: string) => u.replace(/\/+$/, '')

/** The base URL without needing a key (register, the listener download). */
export function resolveBaseUrl(g: GlobalOptions, env = process.env): string {
  if (g.baseUrl) return trim(g.baseUrl)
  if (env.AGENTCHAT_BASE_URL?.trim()) return readClientEnv(env).baseUrl
  const stored = readConfig()
  if (stored) return trim(stored.base_url)
  // Set by the copy downloaded from a server's /setup/listener: that server, not localhost.
  return env.AGENTCHAT_DEFAULT_BASE_URL?.trim() ? trim(env.AGENTCHAT_DEFAULT_BASE_URL.trim()) : DEFAULT_BASE_URL
}

export function openSession(g: GlobalOptions, env = process.env): Session {
  const out = makeOutput(Boolean(g.json))
  const fromEnv = readClientEnv(env).apiKey
  const stored = readConfig()
  const apiKey = fromEnv ?? stored?.api_key
  if (!apiKey) {
    throw new UsageError(`no API key: set AGENTCHAT_API_KEY or run \`agentchat register\` (config: ${configPath(env)})`, 'UNAUTHORIZED')
  }
  const baseUrl = resolveBaseUrl(g, env)
  const storedHandle = !fromEnv && stored?.handle ? stored.handle : undefined
  return { out, baseUrl, apiKey, client: makeClient(apiKey, baseUrl, IDENTITY), storedHandle }
}

/** The caller's handle (from the config when it holds the key in use, else from the server). */
export async function myHandle(s: Session): Promise<string> {
  if (s.storedHandle) return s.storedHandle
  const me = await s.client.getMe()
  s.storedHandle = me.handle
  return me.handle
}

/** `@alice` / `alice` → `alice`; anything else (an id) → undefined. */
export function handleOf(target: string): string | undefined {
  if (target.startsWith('@')) return target.slice(1).toLowerCase()
  if (/^(conv|grp)_/.test(target)) return undefined
  return target.toLowerCase()
}

/**
 * The direct conversation with `handle`: the server has no lookup by participant, so page through
 * the caller's conversation list (100 at a time) until it turns up.
 */
export async function directConversationWith(s: Session, handle: string): Promise<string> {
  for (let offset = 0; ; offset += 100) {
    const page = await s.client.listConversations({ limit: 100, offset })
    const hit = page.find((c) => c.type === 'direct' && c.participants.some((p) => p.handle === handle))
    if (hit) return hit.id
    if (page.length < 100) break
  }
  throw new UsageError(`no conversation with @${handle} yet`, 'CONVERSATION_NOT_FOUND')
}
