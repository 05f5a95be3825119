import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Elysia } from 'elysia'
import type { AppContext } from '../../context.ts'
import { sha256Hex } from '../../lib/crypto.ts'
import { jsonResponse } from '../../http/render.ts'

/**
 * The owner dashboard page (contract §15 is its API): `GET /dashboard` and its assets under
 * `/dashboard/assets/`. No build step — the files in this folder are served as they are: the HTML
 * (with the assets' content hashes filled in, so they can be cached for a year), one plain
 * ES-module script (type-checked through JSDoc, see tsconfig.json here) and one stylesheet. The
 * page talks only to this server (its own origin): no CDN, no fonts, nothing third-party.
 */

const DIR = import.meta.dir

interface Asset {
  body: Uint8Array
  type: string
  hash: string
}

function load(name: string, type: string): Asset {
  const body = new Uint8Array(readFileSync(join(DIR, name)))
  return { body, type, hash: sha256Hex(body).slice(0, 16) }
}

const ASSET_TYPES: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
}

const originOf = (url: string): string | null => {
  try {
    return new URL(url).origin
  } catch {
    return null
  }
}

/**
 * Self only. PUBLIC_URL's origin is the same server under its public name (avatar URLs and
 * socket addresses can name it when the page is reached through another name, e.g. a proxy).
 */
export function contentSecurityPolicy(publicUrl: string): string {
  const pub = originOf(publicUrl)
  const img = ["'self'", ...(pub ? [pub] : [])]
  const connect = ["'self'", ...(pub ? [pub.replace(/^http/, 'ws')] : [])]
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src ${img.join(' ')}`,
    `connect-src ${connect.join(' ')}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ')
}

export function dashboardPageRoutes(ctx: AppContext) {
  const assets = new Map(Object.entries(ASSET_TYPES).map(([name, type]) => [name, load(name, type)]))
  const url = (name: string) => `/dashboard/assets/${name}?v=${assets.get(name)!.hash}`
  const html = readFileSync(join(DIR, 'index.html'), 'utf8').replace(/\{\{asset:([a-z.]+)\}\}/g, (_, name: string) => url(name))
  const security = (): Record<string, string> => ({
    'content-security-policy': contentSecurityPolicy(ctx.config.publicUrl),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
  })

  return new Elysia({ name: 'dashboard-page' })
    .get(
      '/dashboard',
      () =>
        new Response(html, {
          headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...security() },
        }),
      { detail: { hide: true } },
    )
    .get(
      '/dashboard/assets/:name',
      ({ params, query }) => {
        const a = assets.get(params.name)
        if (!a) return jsonResponse(404, { code: 'NOT_FOUND', message: 'Not found' })
        // The page links every asset with its content hash: that URL never changes meaning.
        const immutable = (query as Record<string, string | undefined>).v === a.hash
        return new Response(a.body, {
          headers: {
            'content-type': a.type,
            'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
            etag: `"${a.hash}"`,
            ...security(),
          },
        })
      },
      { detail: { hide: true } },
    )
}
