// Exponential backoff with jitter for the listener's retries: 1 s doubling to a cap (60 s by
// default), each delay drawn uniformly from [d/2, d] so many listeners restarted together do not
// hammer the server in step. A server's Retry-After (429, 503) wins over the schedule. reset()
// after a success.
export class Backoff {
  private n = 0

  constructor(
    private readonly baseMs = 1000,
    private readonly capMs = 60_000,
    private readonly random: () => number = Math.random,
  ) {}

  /** The next delay; `retryAfterMs` from the server is used as is (bounded by 10 × the cap). */
  next(retryAfterMs?: number | null): number {
    this.n++
    if (retryAfterMs !== undefined && retryAfterMs !== null && retryAfterMs >= 0) return Math.min(retryAfterMs, this.capMs * 10)
    const d = Math.min(this.capMs, this.baseMs * 2 ** (this.n - 1))
    return Math.round(d / 2 + (this.random() * d) / 2)
  }

  get failures(): number {
    return this.n
  }

  reset(): void {
    this.n = 0
  }
}
