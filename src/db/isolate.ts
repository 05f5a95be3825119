import { ApiError } from '../http/errors.ts'

/*
 * Batch isolation for every shared write. A group-commit statement carries many clients' jobs;
 * when it fails for a reason that is not a transient conflict, the batch is split in halves and
 * each half retried, until the job to blame is alone. Only that job gets the error (400 when its
 * input is to blame, the original error otherwise); every other job commits. A transient
 * conflict (deadlock, serialisation failure, a duplicate committed by a concurrent writer) is
 * retried whole with jittered backoff; a broken connection fails the batch without splitting,
 * since every half would fail the same way.
 */

export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown }

/** The SQLSTATE of a Postgres error from either driver, wrapped or not. */
export function sqlState(err: unknown): string | undefined {
  for (let e: any = err, depth = 0; e && depth < 4; e = e.cause, depth++) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code
  }
  return undefined
}

/** Deadlock and serialisation failure: the statement did nothing and may simply run again. */
export const TRANSIENT = new Set(['40P01', '40001'])

/** The database is unreachable or going away: splitting cannot help. */
function unavailable(err: unknown): boolean {
  const state = sqlState(err)
  if (state) return /^(08|57|53)/.test(state)
  const code = String((err as { code?: unknown })?.code ?? '')
  const msg = String((err as { message?: unknown })?.message ?? '')
  return /^(CONNECTION_|CONNECT_TIMEOUT|ECONN|EPIPE|ETIMEDOUT|ERR_POSTGRES_(CONNECTION|.*TIMEOUT))/.test(code) || /connection|terminated|closed/i.test(msg)
}

/** Data exceptions (22…) and integrity violations (23…): the job's own input cannot be stored. */
function inputToBlame(err: unknown): boolean {
  const state = sqlState(err)
  return state !== undefined && /^(22|23)/.test(state)
}

export interface IsolateOptions {
  /** SQLSTATEs retried whole (default: deadlock and serialisation failure). */
  retryable?: Set<string>
  /** Whole-batch retries per (sub)batch before it is split like any other failure. */
  maxRetries?: number
  /** Called for every failure that leads to a retry or a split (for logs and counters). */
  onFailure?: (err: unknown, size: number, action: 'retry' | 'split' | 'fail') => void
}

const backoff = (attempt: number) => Bun.sleep(Math.round(2 ** attempt * 4 * (0.5 + Math.random())))

/**
 * Run `run` over `jobs`; `run` must be all-or-nothing (one statement or one transaction) and
 * return one result per job, in order. Returns one outcome per job, in order.
 */
export async function runIsolated<J, R>(jobs: J[], run: (jobs: J[]) => Promise<R[]>, opts: IsolateOptions = {}): Promise<Outcome<R>[]> {
  const retryable = opts.retryable ?? TRANSIENT
  const maxRetries = opts.maxRetries ?? 6
  const attempt = async (part: J[]): Promise<Outcome<R>[]> => {
    for (let tries = 0; ; tries++) {
      try {
        const values = await run(part)
        return values.map((value) => ({ ok: true as const, value }))
      } catch (err) {
        const state = sqlState(err)
        if (state && retryable.has(state) && tries < maxRetries) {
          opts.onFailure?.(err, part.length, 'retry')
          await backoff(tries)
          continue
        }
        if (unavailable(err) || part.length === 1) {
          opts.onFailure?.(err, part.length, 'fail')
          const error = part.length === 1 && inputToBlame(err) ? rejectedInput(err) : err
          return part.map(() => ({ ok: false as const, error }))
        }
        opts.onFailure?.(err, part.length, 'split')
        const half = Math.ceil(part.length / 2)
        const left = await attempt(part.slice(0, half))
        const right = await attempt(part.slice(half))
        return [...left, ...right]
      }
    }
  }
  return jobs.length === 0 ? [] : attempt(jobs)
}

/** 400 for a job whose own values the database refused. */
function rejectedInput(err: unknown): ApiError {
  const detail = String((err as { message?: unknown })?.message ?? 'rejected by the database')
  return new ApiError('VALIDATION_ERROR', `Invalid request: a value could not be stored (${detail})`)
}
