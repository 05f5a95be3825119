import { ApiError } from './errors.ts'

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' }

export function jsonResponse(status: number, body: unknown, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify(body), { status, headers: headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS })
}

/** The flat error envelope `{code, message, details?}` (contract §1.5). */
export function renderError(e: ApiError): Response {
  return jsonResponse(e.status, e.body(), e.headers)
}

/** 500 with the request id, so a client's report can be matched to the one log line with the stack. */
export const internalError = (requestId?: string) =>
  renderError(new ApiError('INTERNAL_ERROR', undefined, requestId ? { request_id: requestId } : undefined))
