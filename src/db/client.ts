import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { sql, type SQL } from 'drizzle-orm'
import postgres from 'postgres'
import type { Config } from '../config.ts'
import * as schema from './schema.ts'

export type Schema = typeof schema
/** The drizzle database, whichever driver is behind it (postgres-js or PGlite). */
export type Db = PgDatabase<PgQueryResultHKT, Schema>
/** A transaction handle has the same query surface as the database. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]

/** Raw parameterised SQL, for the hot paths where query building would cost more than the query. */
export interface RawSql {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>
}

export interface Database {
  db: Db
  kind: 'postgres' | 'pglite'
  raw: RawSql
  /**
   * The hot path's autocommit statements (the send writer's flushes, the ack cursor flushes): on
   * Postgres through Bun's native client (Bun.SQL), which costs a third of postgres.js' CPU per
   * statement under Bun (postgres.js writes through the node:net compatibility layer); on PGlite
   * the same as `raw`. Same rows (bigints as strings, jsonb parsed, timestamps as Date) and
   * errors carrying the SQLSTATE in `code`, like postgres.js.
   */
  fast: RawSql
  /** One transaction on one connection; committed when `fn` resolves, rolled back when it throws. */
  transaction<T>(fn: (q: RawSql) => Promise<T>): Promise<T>
  /** Run raw SQL and get rows back, whatever the driver's result shape. */
  rows<T = Record<string, unknown>>(query: SQL, tx?: Tx | Db): Promise<T[]>
  ping(): Promise<void>
  close(): Promise<void>
  migrate(): Promise<void>
}

const MIGRATIONS = resolve(import.meta.dir, '../../drizzle')

function normalizeRows<T>(result: unknown): T[] {
  // postgres-js returns an array-like RowList; PGlite returns { rows }.
  if (Array.isArray(result)) return result as T[]
  return ((result as { rows?: T[] }).rows ?? []) as T[]
}

/** Bun.SQL's server errors carry the SQLSTATE in `errno`; postgres.js (and every caller) in `code`. */
export class NativeSqlError extends Error {
  constructor(
    readonly code: string,
    cause: unknown,
  ) {
    super((cause as Error)?.message ?? String(cause), { cause })
    this.name = 'NativeSqlError'
  }
}

function nativeError(err: unknown): unknown {
  const e = err as { errno?: unknown; code?: unknown }
  if (typeof e?.errno === 'string' && /^[0-9A-Z]{5}$/.test(e.errno)) return new NativeSqlError(e.errno, err)
  return err
}

function bunSqlRaw(native: Bun.SQL): RawSql {
  return {
    query: async <T,>(text: string, params: unknown[] = []) => {
      try {
        return (await native.unsafe(text, params)) as unknown as T[]
      } catch (err) {
        throw nativeError(err)
      }
    },
  }
}

export async function openDatabase(config: Config): Promise<Database> {
  if (config.databaseUrl) {
    const { drizzle } = await import('drizzle-orm/postgres-js')
    const { migrate } = await import('drizzle-orm/postgres-js/migrator')
    const client = postgres(config.databaseUrl, {
      max: config.databasePool,
      onnotice: () => {},
      // Timestamps come back as Date through drizzle; keep bigints as strings unless mapped.
    })
    const db = drizzle(client, { schema }) as unknown as Db
    const rawOf = (c: postgres.Sql | postgres.TransactionSql): RawSql => ({
      query: async <T,>(text: string, params: unknown[] = []) =>
        (await c.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true })) as unknown as T[],
    })
    const native = new Bun.SQL(config.databaseUrl, { max: config.writerConcurrency + 2, idleTimeout: 60 })
    return {
      db,
      kind: 'postgres',
      raw: rawOf(client),
      fast: bunSqlRaw(native),
      transaction: <T,>(fn: (q: RawSql) => Promise<T>) => client.begin((tx) => fn(rawOf(tx))) as Promise<T>,
      rows: async (q, tx) => normalizeRows(await (tx ?? db).execute(q)),
      ping: async () => {
        await client`select 1`
      },
      close: async () => {
        await Promise.all([client.end({ timeout: 5 }), native.close({ timeout: 5 }).catch(() => {})])
      },
      migrate: async () => {
        // Serialise concurrent boots (several processes on one database) on an advisory lock.
        const lock = await client.reserve()
        try {
          await lock`select pg_advisory_lock(724001)`
          await migrate(drizzle(client, { schema }), { migrationsFolder: MIGRATIONS })
        } finally {
          await lock`select pg_advisory_unlock(724001)`
          lock.release()
        }
      },
    }
  }
  // The embedded default: PGlite in its own worker thread (src/db/pglite-worker.ts), because it
  // executes statements synchronously on whichever thread calls it.
  const { PgliteWorkerClient } = await import('./pglite-client.ts')
  const { drizzle } = await import('drizzle-orm/pglite')
  const dir = join(config.dataDir, 'pglite')
  mkdirSync(dir, { recursive: true })
  const client = await PgliteWorkerClient.open(dir)
  const db = drizzle(client.drizzleClient(), { schema }) as unknown as Db
  const rawOf = (tx: number): RawSql => ({
    query: <T,>(text: string, params: unknown[] = []) => client.rows<T>(text, params, tx),
  })
  return {
    db,
    kind: 'pglite',
    raw: rawOf(0),
    fast: rawOf(0),
    transaction: <T,>(fn: (q: RawSql) => Promise<T>) => client.transaction((tx) => fn(rawOf(tx))),
    rows: async (q, tx) => normalizeRows(await (tx ?? db).execute(q)),
    ping: () => client.ping(),
    close: () => client.close(),
    // The worker migrates with drizzle-orm/pglite's migrator on its own PGlite instance.
    migrate: () => client.migrate(MIGRATIONS),
  }
}

export { sql }
