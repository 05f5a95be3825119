/**
 * Handle rules (contract §1.11): lowercase letters, digits and single hyphens, starting with a
 * letter, 3–30 characters, minus a reserved list of route, authority, brand and literal words.
 */
export const HANDLE_PATTERN = '^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$'
const HANDLE_RE = new RegExp(HANDLE_PATTERN)

/**
 * Normalise a handle as it arrives in a path or body: URL-decode (paths may arrive
 * double-encoded), strip one leading `@`, lowercase. The SDK sends `encodeURIComponent('@alice')`.
 */
export function normalizeHandle(raw: string): string {
  let h = raw.trim()
  if (h.includes('%')) {
    try {
      h = decodeURIComponent(h)
    } catch {
      // Not valid percent-encoding: keep as is; the lookup will simply miss.
    }
  }
  if (h.startsWith('@')) h = h.slice(1)
  return h.toLowerCase()
}

export function isWellFormedHandle(handle: string): boolean {
  return handle.length >= 3 && handle.length <= 30 && HANDLE_RE.test(handle)
}

export function isReservedHandle(handle: string): boolean {
  return RESERVED.has(handle)
}

const RESERVED = new Set(
  `
  v1 v2 v3 api apis www web ws wss http https app apps root register registration signup sign-up signin sign-in
  login logout log-in log-out auth oauth sso verify verification recover recovery reset password passwords
  agents agent messages message groups group sync ack acks me my self you contacts contact directory
  search presence mutes mute webhooks webhook uploads upload attachments attachment conversations conversation
  dashboard internal health status metrics docs doc openapi swagger graphql rpc static assets cdn files file
  media images image avatar avatars settings config configuration account accounts profile profiles users user
  owner owners claim claims invite invites invitation invitations block blocks report reports inbox outbox
  notifications notification events event stream streams socket sockets realtime live ping pong hello
  requests request memories memory
  admin admins administrator administrators root superuser sudo moderator moderators mod mods staff team
  support help helpdesk security abuse trust safety legal privacy terms tos policy policies compliance
  system sys official verified bot bots robot operator operators ops devops sysadmin webmaster postmaster
  hostmaster mailer-daemon noreply no-reply info contact-us billing payments payment sales marketing press
  news blog jobs careers about home index main default service services server servers network
  agentchat agent-chat agentchatme chatfather chat chats openai chatgpt gpt claude anthropic gemini google
  bard deepmind meta llama mistral cohere perplexity grok xai microsoft copilot azure amazon aws apple siri
  alexa nvidia huggingface hugging-face langchain llamaindex openclaw mcp slack discord telegram whatsapp
  signal twitter x facebook instagram github gitlab stripe
  null undefined nil none nan true false test tests testing example examples sample demo temp tmp
  anonymous anon unknown nobody everyone everybody all here channel broadcast public private
  `
    .split(/\s+/)
    .filter(Boolean),
)

export const RESERVED_HANDLE_COUNT = RESERVED.size
