import type { AnyElysia } from 'elysia'
import { toOpenAPISchema } from '@elysiajs/openapi'
import { ERRORS, type ErrorCode } from './errors.ts'

const ERROR_JSON_SCHEMA = {
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: { type: 'string' },
    message: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
  },
}

interface DocOptions {
  summary: string
  tags: string[]
  /** Bearer auth required (adds 401/403 SUSPENDED). */
  auth?: boolean
  /** Error codes this route can return, from the catalogue. */
  errors?: ErrorCode[]
  description?: string
}

/**
 * OpenAPI `detail` for a route: summary, tags, bearer security and one response entry per error
 * status listing the catalogue codes the route can return. Success shapes come from the route's
 * `response` schema.
 */
export function doc(o: DocOptions) {
  const codes = new Set<ErrorCode>(o.errors ?? [])
  codes.add('INTERNAL_ERROR')
  if (o.auth) {
    codes.add('UNAUTHORIZED')
    codes.add('SUSPENDED')
  }
  const byStatus = new Map<number, ErrorCode[]>()
  for (const c of codes) {
    const s = ERRORS[c].status
    byStatus.set(s, [...(byStatus.get(s) ?? []), c])
  }
  const responses: Record<string, { description: string; content: Record<string, { schema: object }> }> = {}
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    responses[String(status)] = {
      description: list.map((c) => `\`${c}\``).join(', '),
      content: { 'application/json': { schema: ERROR_JSON_SCHEMA } },
    }
  }
  return {
    summary: o.summary,
    description: o.description,
    tags: o.tags,
    // Either scheme: Bearer, or AgentSend's x-api-key header.
    security: (o.auth ? [{ bearer: [] }, { apiKey: [] }] : []) as Record<string, string[]>[],
    // Merged into `responses` by buildOpenApi(): Elysia writes `responses` from the route's
    // `response` schema and would drop these otherwise.
    'x-error-responses': responses,
  }
}

const SWAGGER_DIR = new URL('../../node_modules/swagger-ui-dist/', import.meta.url)

/** A browsable UI at /docs, served from the swagger-ui-dist package (works offline). */
export function docsPage(specPath: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AgentChat API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: ${JSON.stringify(specPath)}, dom_id: '#ui', deepLinking: true })</script>
</body></html>`
}

export function docsAsset(name: string): Response | null {
  if (name !== 'swagger-ui.css' && name !== 'swagger-ui-bundle.js') return null
  const type = name.endsWith('.css') ? 'text/css' : 'application/javascript'
  return new Response(Bun.file(new URL(name, SWAGGER_DIR)), { headers: { 'content-type': type } })
}

/**
 * The OpenAPI 3.1 document, generated from the route schemas by @elysiajs/openapi's generator,
 * with each route's catalogue errors merged into its responses.
 */
export function buildOpenApi(app: AnyElysia, info: { title: string; version: string; description: string }, serverUrl: string, webhooks?: Record<string, object>) {
  const { paths, components } = toOpenAPISchema(app, undefined, undefined, undefined, '3.1.2')
  for (const item of Object.values(paths) as Record<string, Record<string, unknown>>[]) {
    for (const op of Object.values(item)) {
      const extra = op['x-error-responses'] as Record<string, unknown> | undefined
      if (!extra) continue
      delete op['x-error-responses']
      op.responses = { ...(op.responses as object), ...extra }
    }
  }
  return {
    openapi: '3.1.2',
    info,
    servers: [{ url: serverUrl }],
    paths,
    ...(webhooks ? { webhooks } : {}),
    components: {
      ...components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'API key: `Authorization: Bearer ac_…`' },
        apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'The same API key in an `x-api-key` header (AgentSend style); Authorization wins when both are sent' },
      },
    },
  }
}
