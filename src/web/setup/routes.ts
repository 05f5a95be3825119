import { Elysia } from 'elysia'
import type { AppContext } from '../../context.ts'
import { lookupForSetup } from '../../modules/invites/service.ts'
import { buildGuide, type InviteInfo } from './guide.ts'
import { LISTENER_FILENAME, listenerScript } from './listener.ts'
import { llmsTxt } from './llms.ts'
import { negotiate } from './negotiate.ts'
import { guideToHtml, guideToMarkdown, SETUP_CSS_HASH } from './render.ts'

/*
 * The setup pages (seed 001, Context Exchange): `GET /setup` and `GET /setup/:invite_code`, a
 * self-setup guide for an agent joining this server, and `GET /llms.txt`. Server-rendered, no
 * script at all; the HTML's one inline stylesheet is allowed by its hash, and nothing is loaded
 * from anywhere (no images, fonts or third parties). Kept out of the OpenAPI document, like
 * /dashboard and /docs: they are pages, not API.
 *
 * An invite code that is unknown, malformed, used, revoked or expired still gets the whole guide,
 * status 200, with a notice saying so — agent fetch tools often drop the body of a 4xx, and the
 * guide is what the reader needs either way. Machines read `X-Invite-Status`.
 */

export function setupCsp(): string {
  return [
    "default-src 'none'",
    `style-src ${SETUP_CSS_HASH}`,
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ')
}

const HTML_HEADERS = (): Record<string, string> => ({
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': setupCsp(),
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
})

const COMMON = {
  vary: 'Accept',
  // The invite page carries a code: never cache it, never send it on as a Referer.
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
}

export function setupPageRoutes(ctx: AppContext) {
  const page = (request: Request, invite?: InviteInfo): Response => {
    const guide = buildGuide(ctx.config.publicUrl, { invite, mailDelivered: ctx.config.smtpUrl !== undefined })
    const headers: Record<string, string> = { ...COMMON }
    if (invite) headers['x-invite-status'] = invite.state
    if (negotiate(request.headers.get('accept')) === 'html') return new Response(guideToHtml(guide), { headers: { ...headers, ...HTML_HEADERS() } })
    return new Response(guideToMarkdown(guide), { headers: { ...headers, 'content-type': 'text/markdown; charset=utf-8' } })
  }

  return new Elysia({ name: 'setup-pages' })
    .get('/setup', ({ request }) => page(request), { detail: { hide: true } })
    // Before /setup/:invite_code, so the word is never looked up as an invite code.
    .get(
      '/setup/listener',
      async () => {
        try {
          const script = await listenerScript(ctx.config.publicUrl)
          return new Response(script, {
            headers: {
              'content-type': 'text/javascript; charset=utf-8',
              'content-disposition': `attachment; filename=${LISTENER_FILENAME}`,
              'cache-control': 'public, max-age=300',
              'x-content-type-options': 'nosniff',
            },
          })
        } catch (err) {
          ctx.log.error({ err }, 'could not build the listener download')
          return Response.json({ code: 'LISTENER_UNAVAILABLE', message: 'The listener download could not be built on this server' }, { status: 503 })
        }
      },
      { detail: { hide: true } },
    )
    .get(
      '/setup/:invite_code',
      async ({ params, request }) => {
        const code = params.invite_code
        const found = await lookupForSetup(ctx, code)
        // Only a well-formed, known code is echoed back (found.state !== 'not_found').
        return page(request, { ...found, code: found.state === 'not_found' ? undefined : code })
      },
      { detail: { hide: true } },
    )
    .get(
      '/llms.txt',
      () =>
        new Response(llmsTxt(ctx.config.publicUrl), {
          headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'public, max-age=300', 'x-content-type-options': 'nosniff' },
        }),
      { detail: { hide: true } },
    )
}
