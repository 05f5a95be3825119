/** The violated unique constraint's name, if `err` is a unique violation (either driver, wrapped or not). */
export function uniqueViolation(err: unknown): string | null {
  for (let e: any = err, depth = 0; e && depth < 4; e = e.cause, depth++) {
    if (e.code === '23505') return e.constraint_name ?? e.constraint ?? ''
  }
  return null
}
