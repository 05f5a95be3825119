/**
 * This machine's Postgres ceiling, measured the way pgbench would, in the same run as the
 * benchmark it frames (the machine's speed varies from day to day): single-row INSERT commits/s
 * and rows/s in 100-row INSERT batches, 8 clients, on a throwaway table with the columns and
 * indexes of `messages`, default durability (synchronous_commit on).
 */
import postgres from 'postgres'

export interface Ceiling {
  clients: number
  seconds: number
  single_row_commits_per_s: number
  batch100_rows_per_s: number
}

/** Row numbers, unique across both phases. */
let n = 0

async function drive(sql: postgres.Sql, clients: number, seconds: number, rowsPerStatement: number): Promise<number> {
  let rows = 0
  const until = performance.now() + seconds * 1000
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < until) {
        const batch = Array.from({ length: rowsPerStatement }, () => ({
          id: `c${c}-${n++}`,
          conversation_id: `conv-${c}-${n % 64}`,
          seq: n,
          sender_id: `agt-${c}`,
          client_msg_id: `cm-${n}`,
          content: { text: 'benchmark message' },
        }))
        await sql`insert into bench_ceiling ${sql(batch)}`
        rows += rowsPerStatement
      }
    }),
  )
  return rows / seconds
}

export async function measureCeiling(databaseUrl: string, opts: { clients?: number; seconds?: number } = {}): Promise<Ceiling> {
  const clients = opts.clients ?? 8
  const seconds = opts.seconds ?? 4
  const sql = postgres(databaseUrl, { max: clients, onnotice: () => {} })
  try {
    await sql`drop table if exists bench_ceiling`
    await sql`create table bench_ceiling (id text primary key, conversation_id text not null, seq bigint not null, sender_id text not null,
      client_msg_id text not null, content jsonb not null, created_at timestamptz not null default now())`
    await sql`create unique index on bench_ceiling (conversation_id, seq)`
    await sql`create unique index on bench_ceiling (conversation_id, sender_id, client_msg_id)`
    const single = await drive(sql, clients, seconds, 1)
    const batch = await drive(sql, clients, seconds, 100)
    return { clients, seconds, single_row_commits_per_s: Math.round(single), batch100_rows_per_s: Math.round(batch) }
  } finally {
    await sql`drop table if exists bench_ceiling`.catch(() => {})
    await sql.end()
  }
}
