/**
 * The thread that owns the embedded database. PGlite runs Postgres compiled to WASM and executes
 * every statement synchronously on the thread that calls it; here that is this worker, so the
 * server's event loop keeps answering HTTP and WebSocket traffic while a statement runs.
 * The main thread talks to it through src/db/pglite-client.ts (protocol: pglite-protocol.ts).
 */
import { PGlite, type Transaction } from '@electric-sql/pglite'
import { drizzle } from 'drizzle-orm/pglite'
import { migrate } from 'drizzle-orm/pglite/migrator'
import { ERROR_FIELDS, type Reply, type Request, type TxId, type WireError, type WireResult } from './pglite-protocol.ts'

declare var self: Worker

interface OpenTx {
  handle: Transaction
  /** Let PGlite's transaction callback return (COMMIT) or throw (ROLLBACK). */
  decide(commit: boolean): void
  /** Settles once PGlite has run COMMIT or ROLLBACK and released its transaction mutex. */
  finished: Promise<void>
}

/** Thrown into PGlite's transaction callback to make it roll back; not an error to report. */
const ROLLBACK = Symbol('rollback')

let pg: PGlite | undefined
const open = new Map<TxId, OpenTx>()

const db = (): PGlite => {
  if (!pg) throw new Error('embedded database is not open')
  return pg
}

/**
 * Drizzle asks for identity parsers (timestamps, dates, intervals and their arrays come back as
 * text and drizzle maps them); functions cannot cross threads, so the OIDs do and the parsers are
 * rebuilt here, once per distinct set.
 */
const identitySets = new Map<string, Record<number, (v: string) => string>>()
function identityParsers(oids: number[]): Record<number, (v: string) => string> {
  const key = oids.join(',')
  let parsers = identitySets.get(key)
  if (!parsers) {
    parsers = {}
    for (const oid of oids) parsers[oid] = (v) => v
    identitySets.set(key, parsers)
  }
  return parsers
}

async function query(m: Extract<Request, { op: 'query' }>): Promise<unknown> {
  let target: PGlite | Transaction = db()
  if (m.tx !== 0) {
    const tx = open.get(m.tx)
    if (!tx) throw new Error(`transaction ${m.tx} is not open`)
    target = tx.handle
  }
  const options = m.rowMode || m.identity ? { rowMode: m.rowMode, parsers: m.identity ? identityParsers(m.identity) : undefined } : undefined
  const r = await target.query(m.text, m.params, options)
  if (m.shape === 'rows') return r.rows
  const out: WireResult = { rows: r.rows, fields: r.fields, affectedRows: r.affectedRows, rowCount: r.rowCount, command: r.command }
  return out
}

/**
 * Opens `pg.transaction` and resolves once its callback is running (BEGIN done). The callback then
 * waits for the main thread's decision; until then PGlite's transaction mutex holds every query
 * outside the transaction back, exactly as it does in-process.
 */
function begin(id: TxId): Promise<void> {
  return new Promise((entered, failed) => {
    let began = false
    let decide!: (commit: boolean) => void
    const decided = new Promise<void>((commit, rollback) => {
      decide = (c) => (c ? commit() : rollback(ROLLBACK))
    })
    const finished = db().transaction(async (handle) => {
      began = true
      open.set(id, { handle, decide, finished })
      entered()
      await decided
    })
    // A failed BEGIN (the callback never ran) is the answer to `begin`; later outcomes are `end`'s.
    // The handler also keeps a rollback from being an unhandled rejection, which kills a worker.
    finished.catch((err) => {
      if (!began) failed(err)
    })
  })
}

async function end(id: TxId, commit: boolean): Promise<void> {
  const tx = open.get(id)
  if (!tx) throw new Error(`transaction ${id} is not open`)
  open.delete(id)
  tx.decide(commit)
  try {
    await tx.finished
  } catch (err) {
    if (err !== ROLLBACK) throw err
  }
}

async function dispatch(m: Request): Promise<unknown> {
  switch (m.op) {
    case 'query':
      return query(m)
    case 'begin':
      return begin(m.tx)
    case 'end':
      return end(m.tx, m.commit)
    case 'open':
      pg = new PGlite(m.dataDir)
      await pg.waitReady
      return null
    case 'migrate':
      await migrate(drizzle(db()), { migrationsFolder: m.folder })
      return null
    case 'close':
      for (const tx of open.values()) tx.decide(false)
      open.clear()
      if (pg && !pg.closed) await pg.close()
      return null
  }
}

function wireError(err: unknown): WireError {
  if (!(err instanceof Error) && (typeof err !== 'object' || err === null)) return { message: String(err), fields: {} }
  const e = err as Record<string, unknown>
  const fields: Record<string, unknown> = {}
  for (const k of ERROR_FIELDS) if (e[k] !== undefined) fields[k] = e[k]
  return { message: typeof e.message === 'string' ? e.message : String(err), fields }
}

function reply(r: Reply) {
  try {
    self.postMessage(r)
  } catch (err) {
    // A value structured clone cannot copy must fail that one request, not the worker.
    self.postMessage({ id: r.id, ok: false, error: wireError(err) } satisfies Reply)
  }
}

self.onmessage = (event: MessageEvent<Request>) => {
  const m = event.data
  dispatch(m).then(
    (value) => reply({ id: m.id, ok: true, value }),
    (err) => reply({ id: m.id, ok: false, error: wireError(err) }),
  )
}
