/**
 * A real HTTP receiver on 127.0.0.1 for webhook tests: records every request (path, headers, raw
 * body) and answers per path — `/ok/*` 200; `/flaky/*` 500 for the first three attempts of each
 * delivery id, then 200; `/slow/*` never answers the first attempt of a delivery, then 200;
 * `/down/*` 500 until `up(path)` is called.
 */
export interface Received {
  path: string
  event: string
  delivery: string
  signature: string
  stripeSignature: string
  body: string
  at: number
}

export async function startReceiver() {
  const got: Received[] = []
  const attempts = new Map<string, number>()
  const upPaths = new Set<string>()
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    idleTimeout: 30,
    async fetch(req) {
      const url = new URL(req.url)
      const body = await req.text()
      const delivery = req.headers.get('x-agentchat-delivery') ?? ''
      got.push({
        path: url.pathname,
        event: req.headers.get('x-agentchat-event') ?? '',
        delivery,
        signature: req.headers.get('x-agentchat-signature') ?? '',
        stripeSignature: req.headers.get('agentchat-signature') ?? '',
        body,
        at: Date.now(),
      })
      const n = (attempts.get(delivery) ?? 0) + 1
      attempts.set(delivery, n)
      // A redirect to a healthy path: a server that followed it would succeed here.
      if (url.pathname.startsWith('/redirect/')) return new Response(null, { status: 302, headers: { location: `/ok/after-redirect${url.pathname}` } })
      if (url.pathname.startsWith('/flaky/')) return new Response('no', { status: n <= 3 ? 500 : 200 })
      if (url.pathname.startsWith('/slow/') && n === 1) {
        await Bun.sleep(5_000)
        return new Response('late')
      }
      if (url.pathname.startsWith('/down/') && !upPaths.has(url.pathname)) return new Response('down', { status: 503 })
      return new Response('ok')
    },
  })
  const base = `http://127.0.0.1:${server.port}`
  return {
    base,
    got,
    up: (path: string) => upPaths.add(path),
    /** Requests to `path`, waiting until at least `n` arrived. */
    async wait(path: string, n = 1, timeoutMs = 20_000, pred: (r: Received) => boolean = () => true): Promise<Received[]> {
      const until = Date.now() + timeoutMs
      for (;;) {
        const list = got.filter((r) => r.path === path && pred(r))
        if (list.length >= n || Date.now() > until) return list
        await Bun.sleep(25)
      }
    },
    stop: () => server.stop(true),
  }
}
