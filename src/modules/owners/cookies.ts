/** Dashboard cookies (contract §15, §17): access 1 h, refresh 30 d, http-only, SameSite=Lax. */
export const COOKIES = {
  access: { name: 'ac_dashboard_session', maxAgeS: 3_600 },
  refresh: { name: 'ac_dashboard_refresh', maxAgeS: 30 * 86_400 },
} as const

/** Cookie values of a request, by name (first occurrence wins). */
export function readCookies(header: string | null): Map<string, string> {
  const out = new Map<string, string>()
  if (!header) return out
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const name = part.slice(0, eq).trim()
    if (!out.has(name)) out.set(name, decodeURIComponent(part.slice(eq + 1).trim()))
  }
  return out
}

/**
 * A Set-Cookie value. `Secure` when the public URL is https (a browser on plain http would drop a
 * Secure cookie and the dashboard could never sign in locally). The refresh cookie is scoped to
 * the auth routes, so it travels only where it is used.
 */
export function setCookie(name: string, value: string, maxAgeS: number, secure: boolean, path = '/'): string {
  const parts = [`${name}=${encodeURIComponent(value)}`, `Path=${path}`, `Max-Age=${maxAgeS}`, 'HttpOnly', 'SameSite=Lax']
  if (secure) parts.push('Secure')
  return parts.join('; ')
}

export const clearCookie = (name: string, secure: boolean, path = '/') => setCookie(name, '', 0, secure, path)

export const REFRESH_PATH = '/dashboard/auth'
