import { fail } from './errors.ts'

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

const originOf = (url: string): string | null => {
  try {
    return new URL(url).origin
  } catch {
    return null
  }
}

/**
 * CSRF guard for cookie-authenticated writes. A write whose `Origin` is present and is neither
 * this server's own origin (as the request reached it: scheme and Host of the request URL) nor
 * PUBLIC_URL's is refused; so is one a browser labels `Sec-Fetch-Site: cross-site` without an
 * Origin. SameSite=Lax cookies already stop most cross-site posts; this stops the rest (older
 * browsers, same-site subdomains, top-level form posts).
 */
export function checkSameOrigin(req: Request, publicUrl: string): void {
  if (SAFE.has(req.method)) return
  const origin = req.headers.get('origin')
  if (origin === null) {
    if (req.headers.get('sec-fetch-site') === 'cross-site') throw fail('FORBIDDEN', 'Cross-site request refused')
    return
  }
  if (origin === originOf(req.url) || origin === originOf(publicUrl)) return
  throw fail('FORBIDDEN', 'Cross-site request refused')
}
