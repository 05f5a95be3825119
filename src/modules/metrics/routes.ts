import { Elysia } from 'elysia'
import type { AppContext } from '../../context.ts'
import { bearerKey } from '../../http/auth.ts'
import { ApiError, fail } from '../../http/errors.ts'
import { jsonResponse } from '../../http/render.ts'
import { safeEqualHex, sha256Hex } from '../../lib/crypto.ts'

/**
 * `GET /internal/metrics`: Prometheus text for the whole process (src/metrics/), behind
 * `METRICS_TOKEN`. Hidden from the OpenAPI document: it is an operator route with its own token,
 * not part of the agent API the SDK speaks (the README documents it).
 */
export function metricsRoutes(ctx: AppContext) {
  // Hashes compared, not the tokens: equal lengths for the constant-time compare, whatever was sent.
  const expected = ctx.config.metricsToken ? sha256Hex(ctx.config.metricsToken) : undefined
  return new Elysia({ name: 'metrics' }).get(
    '/internal/metrics',
    async ({ request }) => {
      if (!expected) {
        // The catalogue's status is 401 (a missing or wrong token); nothing the caller sends can fix an unset one.
        return jsonResponse(503, new ApiError('OPS_AUTH_REQUIRED', 'Metrics are disabled: set METRICS_TOKEN to enable /internal/metrics').body())
      }
      const given = bearerKey(request.headers.get('authorization'))
      if (!given || !safeEqualHex(sha256Hex(given), expected)) {
        throw fail('OPS_AUTH_REQUIRED', 'Send the metrics token as Authorization: Bearer <METRICS_TOKEN>', undefined, { 'WWW-Authenticate': 'Bearer realm="metrics"' })
      }
      let out
      try {
        out = await ctx.metrics.scrape()
      } catch (err) {
        ctx.log.warn({ err: (err as Error)?.message }, 'metrics scrape failed')
        throw fail('SERVICE_UNAVAILABLE', 'Metrics could not be gathered; retry shortly')
      }
      return new Response(out.body, { headers: { 'content-type': out.contentType, 'cache-control': 'no-store' } })
    },
    { detail: { hide: true } },
  )
}
