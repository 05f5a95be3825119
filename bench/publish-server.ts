/**
 * The WebSocket publish ceiling (run by bench/fanout.ts as its own process): a bare Bun server
 * whose sockets subscribe to one topic; `GET /burst?seconds=S&bytes=B` publishes one B-byte text
 * frame after another to every subscriber for S seconds with `server.publish` (one encode per
 * frame, written to every socket). No database, no JSON work: what the machine's WebSocket layer
 * alone can deliver to the same number of sockets.
 */
const port = Number(process.argv[2] ?? 0)
const server = Bun.serve({
  port,
  hostname: '127.0.0.1',
  async fetch(req, srv) {
    const url = new URL(req.url)
    if (url.pathname === '/ws') return srv.upgrade(req) ? undefined : new Response('upgrade', { status: 400 })
    if (url.pathname !== '/burst') return new Response('ok')
    const seconds = Number(url.searchParams.get('seconds') ?? 3)
    const frame = JSON.stringify({ type: 'message.new', payload: { pad: 'x'.repeat(Number(url.searchParams.get('bytes') ?? 600)) } })
    const until = performance.now() + seconds * 1000
    let published = 0
    while (performance.now() < until) {
      // Yield between chunks so the sockets' write buffers drain (and to stay below backpressure).
      for (let i = 0; i < 20; i++) {
        srv.publish('all', frame)
        published++
      }
      await Bun.sleep(1)
    }
    return new Response(String(published))
  },
  websocket: {
    open(ws) {
      ws.subscribe('all')
    },
    message() {},
  },
})
console.log(server.port)
