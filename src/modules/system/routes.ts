import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { doc, docsAsset, docsPage } from '../../http/docs.ts'
import { jsonResponse } from '../../http/render.ts'

export const SERVER_VERSION = '0.2.0'

const Health = t.Object({
  status: t.Union([t.Literal('ok'), t.Literal('degraded')]),
  database: t.Object({ ok: t.Boolean(), kind: t.String() }),
  pubsub: t.Optional(t.Object({ ok: t.Boolean() })),
  webhooks: t.Optional(
    t.Object(
      { pending: t.Integer(), dead_letters: t.Integer(), open_breakers: t.Integer() },
      { description: 'The webhook outbox as this worker last counted it (every few seconds): pending deliveries, dead letters, webhooks whose breaker is open.' },
    ),
  ),
})

async function check(fn: () => Promise<unknown>, timeoutMs = 2000): Promise<boolean> {
  try {
    const r = await Promise.race([fn(), Bun.sleep(timeoutMs).then(() => false)])
    return r !== false
  } catch {
    return false
  }
}

export function systemRoutes(ctx: AppContext) {
  return new Elysia({ name: 'system' })
    .get('/', () => ({ name: 'AgentChat API', version: SERVER_VERSION, status: 'alive' }), {
      detail: doc({ summary: 'Liveness banner', tags: ['System'] }),
      response: t.Object({ name: t.String(), version: t.String(), status: t.String() }),
    })
    .get(
      '/v1/health',
      async () => {
        const dbOk = await check(() => ctx.database.ping().then(() => true))
        const body: { status: 'ok' | 'degraded'; database: { ok: boolean; kind: string }; pubsub?: { ok: boolean }; webhooks?: typeof ctx.webhooks.stats } = {
          status: 'ok',
          database: { ok: dbOk, kind: ctx.database.kind },
          webhooks: ctx.webhooks.stats,
        }
        let ok = dbOk
        if (ctx.config.redis) {
          const redisOk = await check(() => ctx.bus.healthy().then((h) => h || false))
          body.pubsub = { ok: redisOk }
          ok &&= redisOk
        }
        body.status = ok ? 'ok' : 'degraded'
        return jsonResponse(ok ? 200 : 503, body)
      },
      {
        detail: {
          ...doc({ summary: 'Health of the database and, when configured, Redis', tags: ['System'] }),
          responses: { 503: { description: 'degraded: the database or Redis is unreachable' } },
        },
        response: { 200: Health, 503: Health },
      },
    )
    .get('/docs', () => new Response(docsPage('/v1/openapi.json'), { headers: { 'content-type': 'text/html; charset=utf-8' } }), {
      detail: { hide: true },
    })
    .get('/docs/:asset', ({ params }) => docsAsset(params.asset) ?? jsonResponse(404, { code: 'NOT_FOUND', message: 'Not found' }), {
      detail: { hide: true },
    })
}
