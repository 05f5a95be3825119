import { t } from 'elysia'
import { fieldError } from './hygiene.ts'

/*
 * One rule for every numeric query parameter: it must be written as an integer (anything else
 * is a 400 VALIDATION_ERROR naming it, from the schema), and a value outside its documented range
 * is clamped to that range — never passed on to Postgres, where 99999999999999999999 is not a
 * bigint. Sequence cursors are positions and cannot be negative (a negative one is a 400).
 */

export interface IntRange {
  min: number
  max: number
  default: number
}

/** The schema of a clamped integer query parameter, its range stated for the API docs. */
export const clampedInt = (r: IntRange, what: string) =>
  t.Optional(t.Integer({ description: `${what}: ${r.min}–${r.max}, default ${r.default}; values outside the range are clamped` }))

export function clampInt(v: number | undefined, r: IntRange): number {
  if (v === undefined || !Number.isFinite(v)) return r.default
  return Math.min(r.max, Math.max(r.min, Math.trunc(v)))
}

/** A sequence cursor (`before_seq`, `after_seq`): a non-negative integer, capped at the largest exact one. */
export const seqCursor = (what: string) => t.Optional(t.Integer({ description: `${what} (a non-negative integer)` }))

export function seqValue(v: number | undefined, name: string): number | undefined {
  if (v === undefined) return undefined
  // (Checked here rather than with a schema minimum: Elysia's error for that names no field.)
  if (v < 0) throw fieldError(name, 'must be a non-negative integer')
  return Math.min(v, Number.MAX_SAFE_INTEGER)
}

/** Ranges of the list endpoints (contract §1.9, §17). */
export const PAGES = {
  contacts: { limit: { min: 1, max: 100, default: 50 }, offset: { min: 0, max: 1_000_000, default: 0 } },
  conversations: { limit: { min: 1, max: 200, default: 50 }, offset: { min: 0, max: 1_000_000, default: 0 } },
  directory: { limit: { min: 1, max: 50, default: 20 }, offset: { min: 0, max: 10_000, default: 0 } },
  history: { limit: { min: 1, max: 200, default: 50 } },
  sync: { limit: { min: 1, max: 500, default: 200 } },
  memories: { limit: { min: 1, max: 100, default: 50 }, offset: { min: 0, max: 1_000_000, default: 0 } },
} as const satisfies Record<string, Record<string, IntRange>>
