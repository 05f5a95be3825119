/**
 * Messages between the main thread and the worker that owns the embedded PGlite database
 * (src/db/pglite-worker.ts). Everything here crosses `postMessage`, so it must survive structured
 * clone: plain data, Date, BigInt and typed arrays, but no functions and no class instances (an
 * Error loses its own fields, hence WireError).
 */

/** 0 = outside any transaction; otherwise the id the main thread gave the transaction at `begin`. */
export type TxId = number

export type Request =
  | { op: 'open'; id: number; dataDir: string }
  | { op: 'migrate'; id: number; folder: string }
  | {
      op: 'query'
      id: number
      tx: TxId
      text: string
      params: unknown[]
      /**
       * `rows`: just the rows (raw SQL). `result`: rows, fields and counts (drizzle reads `.rows`
       * and the counts).
       */
      shape: 'rows' | 'result'
      rowMode?: 'array' | 'object'
      /** OIDs whose text form is returned unparsed (drizzle's identity parsers, rebuilt in the worker). */
      identity?: number[]
    }
  | { op: 'begin'; id: number; tx: TxId }
  | { op: 'end'; id: number; tx: TxId; commit: boolean }
  | { op: 'close'; id: number }

/** An error as it crosses the thread: the message and every Postgres field PGlite set on it. */
export interface WireError {
  message: string
  fields: Record<string, unknown>
}

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError }

/** What drizzle's PGlite session expects back from `query` (PGlite's `Results`, without `blob`). */
export interface WireResult {
  rows: unknown[]
  fields: { name: string; dataTypeID: number }[]
  affectedRows?: number
  rowCount?: number
  command?: string
}

/**
 * The Postgres error fields PGlite's DatabaseError carries (pg-protocol names). `query` and
 * `params` are not sent back: the main thread still has them.
 */
export const ERROR_FIELDS = [
  'severity',
  'code',
  'detail',
  'hint',
  'position',
  'internalPosition',
  'internalQuery',
  'where',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'file',
  'line',
  'routine',
] as const
