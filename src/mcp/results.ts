// What every tool hands back. Success: the data as structured content plus the same JSON as
// text (hosts that ignore structuredContent still see it). Failure: a tool result with
// `isError: true` whose content is the flat envelope {code, message, details?} — never a stack.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { toEnvelope, type ErrorEnvelope } from '../client/errors.ts'

export function ok(data: Record<string, unknown>, preface?: string): CallToolResult {
  const json = JSON.stringify(data, null, 2)
  return { content: [{ type: 'text', text: preface ? `${preface}\n${json}` : json }], structuredContent: data }
}

export function envelopeResult(envelope: ErrorEnvelope): CallToolResult {
  const flat: Record<string, unknown> = { code: envelope.code, message: envelope.message }
  if (envelope.status !== undefined) flat.status = envelope.status
  if (envelope.details) flat.details = envelope.details
  return { content: [{ type: 'text', text: JSON.stringify(flat) }], structuredContent: flat, isError: true }
}

export function errorResult(err: unknown): CallToolResult {
  return envelopeResult(toEnvelope(err))
}

/**
 * The MCP SDK answers arguments that fail the input schema (and unknown tool names) itself, with
 * its own error text. Those become the same envelope: VALIDATION_ERROR for bad arguments.
 */
export function sdkErrorResult(message: string): CallToolResult {
  const text = message.replace(/^MCP error -?\d+:\s*/, '')
  const code = /validation/i.test(text) ? 'VALIDATION_ERROR' : /not found/i.test(text) ? 'TOOL_NOT_FOUND' : 'TOOL_ERROR'
  return envelopeResult({ code, message: text })
}
