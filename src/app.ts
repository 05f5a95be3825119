import { Elysia, type AnyElysia } from 'elysia'
import type { AppContext } from './context.ts'
import { buildOpenApi } from './http/docs.ts'
import { ApiError } from './http/errors.ts'
import { errorCodeOf, internalError, renderError } from './http/render.ts'
import { getMeta } from './http/request-meta.ts'
import { agentRoutes } from './modules/agents/routes.ts'
import { contactRoutes } from './modules/contacts/routes.ts'
import { contactRequestRoutes } from './modules/contacts/request-routes.ts'
import { memoryRoutes } from './modules/memories/routes.ts'
import { directoryRoutes } from './modules/directory/routes.ts'
import { conversationRoutes } from './modules/conversations/routes.ts'
import { messageRoutes } from './modules/messages/routes.ts'
import { muteRoutes } from './modules/mutes/routes.ts'
import { presenceRoutes } from './modules/presence/routes.ts'
import { groupRoutes } from './modules/groups/routes.ts'
import { syncRoutes } from './modules/sync/routes.ts'
import { webhookRoutes } from './modules/webhooks/routes.ts'
import { uploadRoutes } from './modules/uploads/routes.ts'
import { avatarRoutes } from './modules/avatars/routes.ts'
import { webhooksSection } from './modules/webhooks/events-doc.ts'
import { registrationRoutes } from './modules/registration/routes.ts'
import { ownerRoutes } from './modules/owners/routes.ts'
import { contractRoutes } from './modules/contracts/routes.ts'
import { approvalRoutes } from './modules/approvals/routes.ts'
import { threadRoutes } from './modules/threads/routes.ts'
import { adminRoutes } from './modules/admin/routes.ts'
import { opsRoutes } from './modules/ops/routes.ts'
import { metricsRoutes } from './modules/metrics/routes.ts'
import { dashboardPageRoutes } from './web/dashboard/routes.ts'
import { inviteRoutes } from './modules/invites/routes.ts'
import { setupPageRoutes } from './web/setup/routes.ts'
import { SERVER_VERSION, systemRoutes } from './modules/system/routes.ts'

interface TypeBoxIssue {
  path: string
  message: string
  summary?: string
}

/** Schema failures as zod's `flatten()` shape, which the original server sent. */
function validationDetails(issues: TypeBoxIssue[]) {
  const formErrors: string[] = []
  // A Map, not an object literal: field names come from the client ("__proto__", "toString").
  const fieldErrors = new Map<string, string[]>()
  for (const i of issues) {
    const field = i.path.split('/').filter(Boolean)[0]
    // Elysia coerces integer query parameters through a union; say what it means.
    const text = /should be one of: 'integer'/.test(i.summary ?? '') ? `${field} must be an integer` : i.summary || i.message
    if (!field) formErrors.push(text)
    else {
      const list = fieldErrors.get(field) ?? []
      if (!list.includes(text)) list.push(text)
      fieldErrors.set(field, list)
    }
  }
  return { formErrors, fieldErrors: Object.fromEntries(fieldErrors) }
}

/** Paths of properties in `sent` that the validated `kept` no longer has (the schema dropped them). */
export function unknownProperties(sent: unknown, kept: unknown, prefix = ''): string[] {
  if (sent === null || typeof sent !== 'object' || kept === null || typeof kept !== 'object') return []
  if (Array.isArray(sent)) {
    if (!Array.isArray(kept)) return []
    return sent.flatMap((v, i) => unknownProperties(v, kept[i], `${prefix}${i}.`))
  }
  const out: string[] = []
  for (const key of Object.keys(sent)) {
    if (!Object.prototype.hasOwnProperty.call(kept, key)) out.push(`${prefix}${key}`)
    else out.push(...unknownProperties((sent as Record<string, unknown>)[key], (kept as Record<string, unknown>)[key], `${prefix}${key}.`))
  }
  return out
}

/** Builds the Elysia app: the OpenAPI generator, the error renderer and one plugin per API area. */
export function buildApp(ctx: AppContext) {
  /** Every failure a route or Elysia raises, as the flat envelope. */
  function failure(code: unknown, error: unknown, request: Request): Response {
    if (error instanceof ApiError) return renderError(error)
    switch (code) {
      case 'VALIDATION': {
        const issues = ((error as { all?: TypeBoxIssue[] }).all ?? []) as TypeBoxIssue[]
        const custom = issues.find((i) => i.message && (error as { customError?: unknown }).customError)
        return renderError(new ApiError('VALIDATION_ERROR', custom ? String((error as { customError?: unknown }).customError) : 'Invalid request', validationDetails(issues)))
      }
      case 'PARSE':
        return renderError(new ApiError('VALIDATION_ERROR', 'Invalid JSON body'))
      case 'NOT_FOUND':
        return renderError(new ApiError('NOT_FOUND', 'Route not found'))
      case 'INVALID_COOKIE_SIGNATURE':
      case 'INVALID_FILE_TYPE':
        return renderError(new ApiError('VALIDATION_ERROR', 'Invalid request'))
      default: {
        const meta = getMeta(request)
        // A data exception from Postgres (SQLSTATE class 22) is input the checks above let
        // through: the client's fault, answered 400, and logged so the gap gets closed.
        const sqlState = (error as { code?: unknown })?.code
        if (typeof sqlState === 'string' && /^22[0-9A-Z]{3}$/.test(sqlState)) {
          ctx.log.warn({ err: error, route: meta.route }, 'input rejected by the database')
          return renderError(new ApiError('VALIDATION_ERROR', 'Invalid request: a value could not be stored'))
        }
        ctx.log.error({ err: error, route: meta.route }, 'unhandled error')
        return internalError(meta.requestId)
      }
    }
  }

  let spec: object | undefined
  let self: AnyElysia | undefined
  // normalize 'typebox': check types first, then drop unknown keys. (Elysia's default mirror mode
  // turned a wrong-typed optional object such as `settings: "str"` into `{}` and let it pass.)
  const app = new Elysia({ normalize: 'typebox' })
    // The outer handler already parsed and checked the body (http/hygiene.ts), whatever its
    // Content-Type; every route gets that value.
    .onParse({ as: 'global' }, ({ request }) => {
      const meta = getMeta(request)
      if (!meta.rawBody) return {}
      // STRICT_BODIES: the route gets a copy, so what the client sent stays in `meta` to be
      // compared with what the schema kept (below).
      return ctx.config.strictBodies ? structuredClone(meta.body) : meta.body
    })
    // Declares the bodies JSON for the OpenAPI generator, which documents a route's content types
    // from its named parsers. It never runs: the hook above always answers.
    .onParse({ as: 'global' }, { fn: 'json' } as unknown as () => unknown)
    .onTransform({ as: 'global' }, ({ request, route }) => {
      getMeta(request).route = route
    })
    // STRICT_BODIES=1: properties the route's schema does not know are an error, named, instead
    // of being dropped (off by default: the SDK sends only known fields).
    .onBeforeHandle({ as: 'global' }, ({ request, body }) => {
      if (!ctx.config.strictBodies) return
      const meta = getMeta(request)
      if (!meta.rawBody) return
      const unknown = unknownProperties(meta.body, body)
      if (unknown.length > 0) throw new ApiError('VALIDATION_ERROR', `Unknown properties: ${unknown.join(', ')}`, { unknown_properties: unknown })
    })
    .onError({ as: 'global' }, ({ code, error, request }) => {
      const res = failure(code, error, request)
      // Elysia answers with a copy of this Response, so the code travels on the request (for metrics).
      getMeta(request).errorCode = errorCodeOf(res)
      return res
    })
    .use(systemRoutes(ctx))
    .use(registrationRoutes(ctx))
    .use(agentRoutes(ctx))
    .use(directoryRoutes(ctx))
    .use(contactRequestRoutes(ctx))
    .use(contactRoutes(ctx))
    .use(inviteRoutes(ctx))
    .use(syncRoutes(ctx))
    .use(messageRoutes(ctx))
    .use(conversationRoutes(ctx))
    .use(muteRoutes(ctx))
    .use(presenceRoutes(ctx))
    .use(groupRoutes(ctx))
    .use(webhookRoutes(ctx))
    .use(memoryRoutes(ctx))
    .use(uploadRoutes(ctx))
    .use(avatarRoutes(ctx))
    .use(ownerRoutes(ctx))
    .use(contractRoutes(ctx))
    .use(approvalRoutes(ctx))
    .use(threadRoutes(ctx))
    .use(adminRoutes(ctx))
    .use(opsRoutes(ctx))
    .use(metricsRoutes(ctx))
    .use(dashboardPageRoutes(ctx))
    .use(setupPageRoutes(ctx))
    .get('/v1/openapi.json', (): object => (spec ??= buildOpenApi(self!, API_INFO, ctx.config.publicUrl, webhooksSection())), { detail: { hide: true } })
  self = app
  return app
}

const API_INFO = {
  title: 'AgentChat API',
  version: SERVER_VERSION,
  description:
    'Messaging network for AI agents, wire-compatible with AgentChat (official SDK: `agentchatme`). Every non-2xx response is the flat envelope `{code, message, details?}`; authenticate with `Authorization: Bearer <api_key>`.',
}

export type App = ReturnType<typeof buildApp>
