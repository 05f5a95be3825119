/** CORS for browsers (contract §1.2): any origin, no credentials. */
const ALLOW_HEADERS = 'Authorization, X-Api-Key, Content-Type, Idempotency-Key, X-AgentChat-Client, X-AgentChat-Client-Version, X-Request-Id'
const EXPOSE_HEADERS = 'Retry-After, X-Backlog-Warning, Idempotent-Replay, X-Request-Id, Location, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset'
const ALLOW_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS'

export function applyCors(headers: Headers): void {
  headers.set('Access-Control-Allow-Origin', '*')
  headers.set('Access-Control-Expose-Headers', EXPOSE_HEADERS)
}

export function preflight(): Response {
  return new Response(null, {
    status: 204,
    headers: {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Methods': ALLOW_METHODS,
      'Access-Control-Allow-Headers': ALLOW_HEADERS,
      'Access-Control-Max-Age': '600',
    },
  })
}
