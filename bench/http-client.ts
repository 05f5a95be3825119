/**
 * A lean HTTP/1.1 client for the load generator: a pool of keep-alive TCP connections, one
 * request in flight on each (Bun's server closes a connection that pipelines POSTs with bodies),
 * the rest queued per connection. `fetch` costs the generator ~150–250 µs of CPU per
 * request on this machine, as much as the server spends handling it; since the benchmark reports
 * the CPU of every process on the same cores, the generator should take as little as it can.
 * Only what the benchmark needs: one request shape, status and body back.
 */
import type { Socket } from 'bun'

interface Waiter {
  resolve: (r: { status: number; body: string }) => void
  reject: (e: Error) => void
}

interface Conn {
  socket: Socket<undefined> | null
  ready: Promise<void>
  waiters: Waiter[]
  buf: Buffer
  /** Bytes the socket did not take yet (written on `drain`). */
  out: Buffer | null
  /** Requests waiting for the one in flight to be answered. */
  queued: Buffer[]
}

export class LeanHttp {
  private readonly conns: Conn[] = []
  private next = 0

  constructor(
    private readonly host: string,
    private readonly port: number,
    connections = 64,
  ) {
    for (let i = 0; i < connections; i++) this.conns.push(this.open())
  }

  private open(): Conn {
    const conn: Conn = { socket: null, ready: Promise.resolve(), waiters: [], buf: Buffer.alloc(0), out: null, queued: [] }
    conn.ready = Bun.connect({
      hostname: this.host,
      port: this.port,
      socket: {
        data: (_s, chunk) => this.onData(conn, chunk),
        drain: () => this.flush(conn),
        close: () => this.fail(conn, new Error('connection closed')),
        error: (_s, err) => this.fail(conn, err),
      },
    }).then((s) => {
      conn.socket = s
    })
    return conn
  }

  private write(conn: Conn, data: Buffer) {
    if (conn.out) {
      conn.out = Buffer.concat([conn.out, data])
      return
    }
    const n = conn.socket!.write(data)
    if (n < data.length) conn.out = data.subarray(Math.max(0, n))
  }

  private flush(conn: Conn) {
    const pending = conn.out
    if (!pending || !conn.socket) return
    conn.out = null
    this.write(conn, pending)
  }

  private fail(conn: Conn, err: Error) {
    conn.socket = null
    conn.queued = []
    for (const w of conn.waiters.splice(0)) w.reject(err)
  }

  private onData(conn: Conn, chunk: Buffer) {
    conn.buf = conn.buf.length ? Buffer.concat([conn.buf, chunk]) : chunk
    for (;;) {
      const end = conn.buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = conn.buf.subarray(0, end).toString('latin1')
      const status = Number(head.slice(9, 12))
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head)
      const len = m ? Number(m[1]) : 0
      if (conn.buf.length < end + 4 + len) return
      const body = conn.buf.subarray(end + 4, end + 4 + len).toString()
      conn.buf = conn.buf.subarray(end + 4 + len)
      conn.waiters.shift()?.resolve({ status, body })
      const nextReq = conn.queued.shift()
      if (nextReq) this.write(conn, nextReq)
    }
  }

  /** POST a JSON body; resolves with the status and the body text. */
  async post(path: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
    const i = this.next++ % this.conns.length
    let conn = this.conns[i]!
    await conn.ready
    // The server closes idle keep-alive connections (Bun: after 10 s): open a fresh one.
    if (!conn.socket) {
      conn = this.conns[i] = this.open()
      await conn.ready
    }
    let req = `POST ${path} HTTP/1.1\r\nHost: ${this.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`
    for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`
    req += `\r\n${body}`
    return new Promise((resolve, reject) => {
      conn.waiters.push({ resolve, reject })
      if (conn.waiters.length === 1) this.write(conn, Buffer.from(req))
      else conn.queued.push(Buffer.from(req))
    })
  }

  close() {
    for (const c of this.conns) c.socket?.end()
  }
}
