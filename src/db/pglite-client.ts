/**
 * The main thread's handle on the embedded database, which lives in its own worker
 * (src/db/pglite-worker.ts): PGlite executes statements synchronously on the calling thread, and
 * in-process a burst of writes stalled every HTTP request behind it.
 */
import type { PGlite } from '@electric-sql/pglite'
import type { Reply, Request, TxId, WireError, WireResult } from './pglite-protocol.ts'

/** A busy worker that answered anything this recently is making progress, hence healthy. */
const PROGRESS_WINDOW_MS = 5_000
/** An idle worker must answer `select 1` this fast, or it is reported down. */
const PING_TIMEOUT_MS = 2_000
/** PGlite gets this long to checkpoint and close before the worker is terminated regardless. */
const CLOSE_TIMEOUT_MS = 10_000

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
type Outgoing = DistributiveOmit<Request, 'id'>

interface Pending {
  resolve(value: unknown): void
  reject(err: Error): void
  /** Kept here so errors carry them as PGlite's do, without sending them back across the thread. */
  text?: string
  params?: unknown[]
}

/** A Postgres error from the worker, with PGlite's fields (`code`, `constraint`, `detail`, …). */
export class PgliteError extends Error {
  override name = 'DatabaseError'
  code?: string
  constraint?: string
  detail?: string
  severity?: string
  query?: string
  params?: unknown[]
}

/** The part of PGlite's query options that can cross to the worker. */
interface QueryOptions {
  rowMode?: 'array' | 'object'
  parsers?: Record<number, (value: string) => unknown>
  serializers?: unknown
  blob?: unknown
  paramTypes?: unknown
}

/** What drizzle-orm/pglite calls on its client (see its session.js): `query` and `transaction`. */
export interface PgliteLike {
  query(text: string, params?: unknown[], options?: QueryOptions): Promise<WireResult>
  transaction<T>(fn: (tx: PgliteLike) => Promise<T>): Promise<T>
}

const PROBE = '\u0000probe'

/** The OIDs of `parsers`, which must all be identity functions (drizzle's are). */
function identityOids(parsers: Record<number, (value: string) => unknown>): number[] {
  const oids: number[] = []
  for (const key of Object.keys(parsers)) {
    // Only the OID crosses the thread and the worker rebuilds `v => v`: any other parser would be
    // silently replaced, so refuse it.
    if (parsers[Number(key)]!(PROBE) !== PROBE) throw new Error(`the embedded database accepts identity parsers only (OID ${key})`)
    oids.push(Number(key))
  }
  return oids
}

function toError(wire: WireError, p: Pending): PgliteError {
  const err = Object.assign(new PgliteError(wire.message), wire.fields)
  if (p.text !== undefined) {
    err.query = p.text
    err.params = p.params
  }
  return err
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: Timer | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`embedded database: ${what} took longer than ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

export class PgliteWorkerClient {
  private readonly worker: Worker
  private readonly pending = new Map<number, Pending>()
  private seq = 0
  private txSeq = 0
  /** Set once the worker is gone: every later call fails with it at once. */
  private dead: Error | undefined
  private crash: string | undefined
  private closing: Promise<void> | undefined
  private lastReplyAt = 0
  private busySince = 0

  private constructor() {
    // Unreferenced while idle, so an open database alone does not keep a process alive (as the
    // in-process PGlite did not); referenced while a request is outstanding, so a script awaiting
    // a query is not cut short.
    this.worker = new Worker(new URL('./pglite-worker.ts', import.meta.url), { ref: false })
    this.worker.onmessage = (e: MessageEvent<Reply>) => this.onReply(e.data)
    this.worker.addEventListener('error', (e) => {
      this.crash = (e as ErrorEvent).message
    })
    this.worker.addEventListener('close', (e) => this.onExit((e as unknown as { code?: number }).code))
  }

  /** Start the worker and open (or initdb) the data directory in it. */
  static async open(dataDir: string): Promise<PgliteWorkerClient> {
    const client = new PgliteWorkerClient()
    try {
      await client.call({ op: 'open', dataDir })
    } catch (err) {
      client.terminate()
      throw err
    }
    return client
  }

  /** Raw SQL: rows as objects, with PGlite's default parsers (timestamptz → Date, jsonb → object…). */
  rows<T>(text: string, params: unknown[] = [], tx: TxId = 0): Promise<T[]> {
    return this.call({ op: 'query', tx, text, params, shape: 'rows' }, text, params)
  }

  /** A PGlite-shaped client for drizzle-orm/pglite, bound to `tx` (0: outside a transaction). */
  driver(tx: TxId = 0): PgliteLike {
    return {
      query: (text, params = [], options) => {
        if (options?.serializers || options?.blob || options?.paramTypes) throw new Error('the embedded database does not take serializers, blobs or paramTypes')
        const identity = options?.parsers ? identityOids(options.parsers) : undefined
        return this.call({ op: 'query', tx, text, params, shape: 'result', rowMode: options?.rowMode, identity }, text, params)
      },
      transaction: (fn) => this.transaction((t) => fn(this.driver(t))),
    }
  }

  /** Drizzle's type wants a PGlite; `driver()` is the part of it drizzle uses. */
  drizzleClient(): PGlite {
    return this.driver() as unknown as PGlite
  }

  /**
   * The worker holds a PGlite transaction open (and with it PGlite's mutex) from `begin` until
   * `end`: committed when `fn` resolves, rolled back when it throws.
   */
  async transaction<T>(fn: (tx: TxId) => Promise<T>): Promise<T> {
    const tx = ++this.txSeq
    await this.call({ op: 'begin', tx })
    let value: T
    try {
      value = await fn(tx)
    } catch (err) {
      // The caller's error is the one that matters; a failed ROLLBACK (worker gone) adds nothing.
      await this.call({ op: 'end', tx, commit: false }).catch(() => {})
      throw err
    }
    await this.call({ op: 'end', tx, commit: true })
    return value
  }

  migrate(folder: string): Promise<void> {
    return this.call({ op: 'migrate', folder })
  }

  /**
   * Health without queueing: a `select 1` sent while writes are queued would wait behind all of
   * them and report a busy database as down. So while requests are outstanding, answers arriving
   * (within PROGRESS_WINDOW_MS, counted from when the queue formed) mean it is making progress;
   * only when idle does a real round trip run, bounded so a hung worker is reported down.
   */
  async ping(): Promise<void> {
    if (this.dead) throw this.dead
    if (this.pending.size > 0) {
      const quietFor = performance.now() - Math.max(this.lastReplyAt, this.busySince)
      if (quietFor < PROGRESS_WINDOW_MS) return
      throw new Error(`embedded database: no answer for ${Math.round(quietFor)} ms with ${this.pending.size} requests outstanding`)
    }
    await withTimeout(this.rows('select 1'), PING_TIMEOUT_MS, 'ping')
  }

  /** Close PGlite in the worker (it flushes to disk), then end the worker. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      if (this.dead) return
      try {
        await withTimeout(this.call({ op: 'close' }), CLOSE_TIMEOUT_MS, 'close')
      } finally {
        this.terminate()
      }
    })())
  }

  /** End the worker at once (also what a crash looks like to callers): outstanding requests fail. */
  terminate(): void {
    void this.worker.terminate()
    this.fail(new Error(this.closing ? 'embedded database is closed' : 'embedded database worker was terminated'))
  }

  private call<T>(req: Outgoing, text?: string, params?: unknown[]): Promise<T> {
    if (this.dead) return Promise.reject(this.dead)
    const id = ++this.seq
    return new Promise<T>((resolve, reject) => {
      try {
        this.worker.postMessage({ ...req, id } as Request)
      } catch (err) {
        // Parameters structured clone cannot copy (a function, a class instance): fail this call only.
        return reject(err)
      }
      if (this.pending.size === 0) {
        this.busySince = performance.now()
        this.worker.ref()
      }
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, text, params })
    })
  }

  private onReply(r: Reply): void {
    const p = this.pending.get(r.id)
    if (!p) return
    this.pending.delete(r.id)
    this.lastReplyAt = performance.now()
    if (this.pending.size === 0) this.worker.unref()
    if (r.ok) p.resolve(r.value)
    else p.reject(toError(r.error, p))
  }

  private onExit(code: number | undefined): void {
    if (this.closing) return this.fail(new Error('embedded database is closed'))
    const why = this.crash ? `: ${this.crash}` : ''
    this.fail(new Error(`embedded database worker exited (code ${code ?? 'unknown'})${why}`))
  }

  /** Reject everything outstanding with `err`, and every later call too: nothing may hang. */
  private fail(err: Error): void {
    this.dead ??= err
    const pending = [...this.pending.values()]
    this.pending.clear()
    for (const p of pending) p.reject(this.dead)
  }
}
