import { readCode, type TestServer } from './harness.ts'

/**
 * A dashboard client for tests: keeps the cookies the server sets, like a browser would, and
 * sends this server's own Origin on writes (as a same-origin page does).
 */
export class OwnerClient {
  readonly cookies = new Map<string, string>()
  lastSetCookies: string[] = []

  constructor(
    readonly s: TestServer,
    readonly email: string,
  ) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const h: Record<string, string> = { origin: this.s.url, ...headers }
    if (this.cookies.size > 0) h.cookie = this.cookieHeader()
    if (body !== undefined) h['content-type'] = 'application/json'
    const res = await fetch(this.s.url + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) })
    this.lastSetCookies = res.headers.getSetCookie()
    for (const c of this.lastSetCookies) {
      const [pair] = c.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq)
      const value = pair!.slice(eq + 1)
      if (value === '' || /Max-Age=0/i.test(c)) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    const text = await res.text()
    let json: any
    try {
      json = text ? JSON.parse(text) : undefined
    } catch {}
    return { status: res.status, json, headers: res.headers, text }
  }

  /** Request a code, read it from MAIL_DIR, verify: signed in. */
  async signIn(): Promise<void> {
    const started = Date.now() - 5
    const r = await this.call('POST', '/dashboard/auth/otp/request', { email: this.email })
    if (r.status !== 200) throw new Error(`otp request: ${r.status} ${r.text}`)
    const code = await readCode(this.s.mailDir, this.email, started)
    const v = await this.call('POST', '/dashboard/auth/otp/verify', { pending_id: r.json.pending_id, code })
    if (v.status !== 200) throw new Error(`otp verify: ${v.status} ${v.text}`)
  }

  async claim(apiKey: string) {
    return this.call('POST', '/dashboard/agents/claim', { api_key: apiKey })
  }
}

/** A dashboard socket: ticket, connect, collect frames. */
export async function dashboardSocket(owner: OwnerClient) {
  const t = await owner.call('POST', '/dashboard/ws/ticket')
  if (t.status !== 200) throw new Error(`ticket: ${t.status} ${t.text}`)
  return openDashboardSocket(owner.s.url, t.json.ticket)
}

export function openDashboardSocket(base: string, ticket: string) {
  const frames: any[] = []
  let closed: { code: number; reason: string } | null = null
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/ws/dashboard?ticket=${encodeURIComponent(ticket)}`)
  ws.onmessage = (e) => frames.push(JSON.parse(String(e.data)))
  ws.onclose = (e) => (closed = { code: e.code, reason: e.reason })
  const until = async (pred: () => boolean, what: string, ms = 8000) => {
    const end = Date.now() + ms
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(frames)} closed=${JSON.stringify(closed)}`)
      await Bun.sleep(20)
    }
  }
  return {
    frames,
    get closed() {
      return closed
    },
    until,
    close: () => ws.close(),
  }
}
