import { Elysia, type AnyElysia } from 'elysia'
import type { AppContext } from './context.ts'
import { buildOpenApi } from './http/docs.ts'
import { ApiError } from './http/errors.ts'
import { internalError, renderError } from './http/render.ts'
import { getMeta } from './http/request-meta.ts'
import { agentRoutes } from './modules/agents/routes.ts'
import { contactRoutes } from './modules/contacts/routes.ts'
import { directoryRoutes } from './modules/directory/routes.ts'
import { conversationRoutes } from './modules/conversations/routes.ts'
import { messageRoutes } from './modules/messages/routes.ts'
import { muteRoutes } from './modules/mutes/routes.ts'
import { presenceRoutes } from './modules/presence/routes.ts'
import { groupRoutes } from './modules/groups/routes.ts'
import { syncRoutes } from './modules/sync/routes.ts'
import { registrationRoutes } from './modules/registration/routes.ts'
import { SERVER_VERSION, systemRoutes } from './modules/system/routes.ts'

interface TypeBoxIssue {
  path: string
  message: string
  summary?: string
}

/** Schema failures as zod's `flatten()` shape, which the original server sent. */
function validationDetails(issues: TypeBoxIssue[]) {
  const formErrors: string[] = []
  const fieldErrors: Record<string, string[]> = {}
  for (const i of issues) {
    const field = i.path.split('/').filter(Boolean)[0]
    const text = i.summary || i.message
    if (!field) formErrors.push(text)
    else (fieldErrors[field] ??= []).includes(text) || fieldErrors[field]!.push(text)
  }
  return { formErrors, fieldErrors }
}

/** Builds the Elysia app: the OpenAPI generator, the error renderer and one plugin per API area. */
export function buildApp(ctx: AppContext) {
  let spec: object | undefined
  let self: AnyElysia | undefined
  const app = new Elysia()
    .onTransform({ as: 'global' }, ({ request, route }) => {
      getMeta(request).route = route
    })
    .onError({ as: 'global' }, ({ code, error, request }) => {
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
        default:
          ctx.log.error({ err: error, route: getMeta(request).route }, 'unhandled error')
          return internalError()
      }
    })
    .use(systemRoutes(ctx))
    .use(registrationRoutes(ctx))
    .use(agentRoutes(ctx))
    .use(directoryRoutes(ctx))
    .use(contactRoutes(ctx))
    .use(syncRoutes(ctx))
    .use(messageRoutes(ctx))
    .use(conversationRoutes(ctx))
    .use(muteRoutes(ctx))
    .use(presenceRoutes(ctx))
    .use(groupRoutes(ctx))
    .get('/v1/openapi.json', (): object => (spec ??= buildOpenApi(self!, API_INFO, ctx.config.publicUrl)), { detail: { hide: true } })
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
