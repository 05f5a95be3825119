// How every command talks to its caller. Human-readable lines by default; with --json exactly one
// JSON document per command on stdout (streaming commands: one JSON object per line), so scripts
// can pipe it into `jq`. Failures go to stderr as the server's flat envelope — never a stack.
import { toEnvelope, type ErrorEnvelope } from '../client/errors.ts'

export interface Output {
  json: boolean
  /** The one result document (json mode) or nothing: the caller printed human lines itself. */
  result(doc: unknown, human: () => string | string[]): void
  /** One line of a stream: an object per line in json mode. */
  event(doc: unknown, human: () => string): void
  /** A progress or diagnostic line: stderr, so stdout stays machine-readable. */
  note(text: string): void
}

export function makeOutput(json: boolean): Output {
  return {
    json,
    result(doc, human) {
      if (json) {
        process.stdout.write(JSON.stringify(doc, null, 2) + '\n')
        return
      }
      const h = human()
      const lines = Array.isArray(h) ? h : [h]
      if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n')
    },
    event(doc, human) {
      process.stdout.write((json ? JSON.stringify(doc) : human()) + '\n')
    },
    note(text) {
      process.stderr.write(text + '\n')
    },
  }
}

/** `error CODE: message` (or the envelope as JSON) on stderr. */
export function printError(err: unknown, json: boolean): ErrorEnvelope {
  const env = toEnvelope(err)
  if (json) process.stderr.write(JSON.stringify({ error: env }) + '\n')
  else process.stderr.write(`error ${env.code}: ${env.message}\n`)
  return env
}

/** A message as a person reads it: `@alice → you: text` (or → the group / → @bob). */
export interface MessageLike {
  id?: string
  conversation_id?: string
  sender?: string
  seq?: number
  type?: string
  content?: { text?: string; data?: Record<string, unknown>; attachment_id?: string }
  created_at?: string
  context?: { conversation?: { type?: string; group_name?: string | null } }
}

export function formatMessage(m: MessageLike, me: string | undefined, peer?: string): string {
  const from = m.sender === me ? 'you' : `@${m.sender ?? '?'}`
  const conv = m.context?.conversation
  let to: string
  if (conv?.type === 'group' || m.conversation_id?.startsWith('grp_')) to = conv?.group_name ? `#${conv.group_name}` : m.conversation_id ?? 'group'
  else if (m.sender === me) to = peer ? `@${peer}` : 'them'
  else to = 'you'
  const parts: string[] = []
  if (m.content?.text !== undefined) parts.push(m.content.text)
  if (m.content?.data !== undefined) parts.push(JSON.stringify(m.content.data))
  if (m.content?.attachment_id) parts.push(`[attachment ${m.content.attachment_id}]`)
  const time = m.created_at ? `${m.created_at.slice(0, 19).replace('T', ' ')}  ` : ''
  return `${time}${from} → ${to}: ${parts.join(' ')}`
}
