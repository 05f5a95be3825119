// Every failure a tool or command reports is the server's flat envelope (code + message, plus
// details when the server gave them) — never a stack trace. Errors that never reached the server
// get codes of their own so a script can tell "the server said no" from "no server".
import { AgentChatError, ConnectionError } from 'agentchatme'

export interface ErrorEnvelope {
  code: string
  message: string
  status?: number
  details?: Record<string, unknown>
}

export function toEnvelope(err: unknown): ErrorEnvelope {
  if (err instanceof AgentChatError) {
    const out: ErrorEnvelope = { code: String(err.code), message: err.message, status: err.status }
    if (err.details && Object.keys(err.details).length > 0) out.details = err.details
    return out
  }
  if (err instanceof ConnectionError) return { code: 'CONNECTION_ERROR', message: err.message }
  if (err instanceof UsageError) return { code: err.code, message: err.message }
  if (err instanceof Error && err.name === 'AbortError') return { code: 'TIMEOUT', message: 'the request timed out' }
  const message = err instanceof Error ? err.message : String(err)
  return { code: 'CLIENT_ERROR', message }
}

/** A mistake on the caller's side found before any request (missing key, bad flag). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly code = 'VALIDATION_ERROR',
  ) {
    super(message)
    this.name = 'UsageError'
  }
}
