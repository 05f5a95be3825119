import { ApiError, type ErrorCode } from './errors.ts'

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' }

export function jsonResponse(status: number, body: unknown, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify(body), { status, headers: headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS })
}

const codes = new WeakMap<Response, ErrorCode>()

/** The flat error envelope `{code, message, details?}` (contract §1.5). */
export function renderError(e: ApiError): Response {
  const res = jsonResponse(e.status, e.body(), e.headers)
  codes.set(res, e.code)
  return res
}

/** The error code a response rendered by `renderError` carries (metrics read it without parsing the body). */
export const errorCodeOf = (res: Response): ErrorCode | undefined => codes.get(res)

/** 500 with the request id, so a client's report can be matched to the one log line with the stack. */
export const internalError = (requestId?: string) =>
  renderError(new ApiError('INTERNAL_ERROR', undefined, requestId ? { request_id: requestId } : undefined))
